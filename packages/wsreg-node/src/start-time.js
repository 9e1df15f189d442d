// This process's start time as readers check it (docs/registry-format.md, "Liveness"):
// field 22 of /proc/self/stat, in clock ticks since boot. With it a reader tells this
// process from a later one that got the same PID. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after the last `)`. Null where there is
// no /proc (readers then check the PID alone).

import fs from 'node:fs';

/** @returns {number | null} */
export function ownStartTime() {
  let stat;
  try {
    stat = fs.readFileSync('/proc/self/stat', 'utf8');
  } catch {
    return null;
  }
  const field = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[19];
  const ticks = Number(field);
  return Number.isSafeInteger(ticks) ? ticks : null;
}
