"""wsreg: register a Python server in the wsreg registry of local WebSocket servers
(docs/registry-format.md) and keep it there while the process lives. Standard library
only; usable from asyncio servers (the keeper is a daemon thread).

    with wsreg.register(kind="mcp", port=port, project="demo") as reg:
        ...  # serve; the entry is listed, and comes back if its file is deleted
"""

from ._entry import EntryError
from ._registration import Registration, register

__all__ = ["EntryError", "Registration", "register"]
