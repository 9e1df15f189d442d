"""Removes this process's entries when it ends, without changing how it ends.

- ``atexit`` covers a normal end, ``sys.exit()``, an uncaught exception and Ctrl-C (an
  uncaught KeyboardInterrupt unwinds through atexit, and Python then dies of SIGINT as
  before).
- SIGTERM kills a Python process without running atexit. If SIGTERM still has its
  default action when the first registration is made (from the main thread), a handler is
  installed that removes the entries, puts the default action back and raises SIGTERM
  again, so the process dies of it with the signal's status, as it would have. If the app
  has a handler of its own (or ignores SIGTERM), nothing is installed: the app decides
  what SIGTERM means, and if it ends the process, atexit removes the entries. Chaining to
  the app's handler after removing the entries would be wrong: a handler that keeps the
  process alive would leave a live server unregistered. An app that installs its handler
  later replaces this one, with the same result. From another thread no handler can be
  installed (a rule of ``signal``); atexit still runs.
- A forked child forgets its parent's registrations, so that its exit does not remove
  the parent's entries.
"""

import atexit
import os
import signal
import threading
from typing import Callable, Dict

# Reentrant: the SIGTERM handler runs on the main thread, which may hold it already.
_lock = threading.RLock()
# Registration id → its remover (no exceptions, idempotent).
_removers: Dict[str, Callable[[], None]] = {}
_installed = False


def remove_on_exit(key: str, remove: Callable[[], None]) -> None:
    global _installed
    with _lock:
        _removers[key] = remove
        if not _installed:
            _installed = True
            atexit.register(_remove_all)
            _take_sigterm()


def forget(key: str) -> None:
    with _lock:
        _removers.pop(key, None)


def _remove_all() -> None:
    with _lock:
        removers = list(_removers.values())
        _removers.clear()
    for remove in removers:
        remove()


def _take_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, _frame: object) -> None:
    _remove_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _forget_all_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at the fork
    _removers.clear()


os.register_at_fork(after_in_child=_forget_all_in_child)
