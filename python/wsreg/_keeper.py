"""Keeps one entry file present while its registration lives (docs/registry-format.md,
"Keeping an entry present"), by the Rust keeper's rules (crates/wsreg/src/registration.rs):
when the file is deleted, replaced, or no longer holds the entry, it is written back.

The keeper is a daemon thread that ``stat``s its own file once a second — the Rust
keeper's fallback — and reads the file only when its identity changed, rewriting it only
when it no longer holds the entry. That costs one cheap syscall a second and restores an
entry within a second. Inotify through ctypes was the alternative and was not taken: the
standard library has no binding, so it would mean hand-declaring libc calls and parsing
event structs (Linux only, easy to get subtly wrong), and each keeper would hold an
inotify instance of its own — there is no shared one as libuv gives Node — from the
user's small per-user budget (often 128), which the Rust keeper only takes while 32 more
remain. Nothing here runs on an asyncio loop: the thread never touches it, so a server's
loop is never blocked.
"""

import json
import logging
import threading
from typing import Optional

from ._entry import canonical_file_text
from ._store import FileId, Store, file_id_at

_log = logging.getLogger("wsreg")

# How often the keeper looks at its file, in seconds.
TICK = 1.0


class Keeper(threading.Thread):
    def __init__(self, store: Store, entry_id: str, text: str, written: FileId) -> None:
        super().__init__(name=f"wsreg-keeper {entry_id}", daemon=True)
        self._store = store
        self._id = entry_id
        self._text = text
        self._path = store.entry_path(entry_id)
        # The version of the file known to hold the entry.
        self._verified: Optional[FileId] = written
        self._halt = threading.Event()

    def run(self) -> None:
        last_error = ""
        while not self._halt.wait(TICK):
            try:
                self._ensure_present()
                last_error = ""
            except OSError as e:
                # A lasting failure (an unwritable directory) is told once.
                if str(e) != last_error:
                    _log.warning("cannot restore the entry %s in %s: %s", self._id, self._store.dir, e)
                last_error = str(e)

    def stop(self) -> None:
        """Stops the thread and waits for it (a rewrite in progress finishes first)."""
        self._halt.set()
        if self is not threading.current_thread() and self.is_alive():
            self.join()

    def _ensure_present(self) -> None:
        now = file_id_at(self._path)
        if now is not None and now == self._verified:
            return
        if now is not None:
            found = self._store.read(self._id)
            if found is not None and found.text is not None and _holds(found.text, self._text):
                self._verified = found.file_id
                return
        self._verified = self._store.write(self._id, self._text)
        _log.info("%s: entry %s was missing or changed; wrote it back", self._store.dir, self._id)


def _holds(text: str, expected: str) -> bool:
    if text == expected:
        return True
    try:
        return canonical_file_text(json.loads(text)) == expected
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        return False
