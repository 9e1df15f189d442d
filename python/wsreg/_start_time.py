"""This process's start time as readers check it (docs/registry-format.md, "Liveness").

Field 22 of /proc/self/stat, in clock ticks since boot: with it a reader tells this
process from a later one that got the same PID. The command name (field 2) may hold
spaces and parentheses, so fields are counted after the last ``)``. None where there is
no /proc (readers then check the PID alone).
"""

from typing import Optional


def own_start_time() -> Optional[int]:
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 1 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None
