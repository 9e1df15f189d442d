"""``register`` and a live ``Registration``: the entry written, kept present by a Keeper
thread, and removed by ``close()`` (or leaving its ``with`` block) or when the process
ends (_cleanup.py), whichever comes first. Nothing is written when an argument is bad:
the entry is built and checked first."""

import logging
from types import MappingProxyType
from typing import Any, Mapping, Optional

from ._cleanup import forget, remove_on_exit
from ._entry import build_entry, entry_file_text
from ._keeper import Keeper
from ._location import PathArg, registry_dir
from ._store import Store

_log = logging.getLogger("wsreg")


class Registration:
    """A registered server. Use it as a context manager, or call ``close()``."""

    def __init__(self, store: Store, entry: Mapping[str, Any]) -> None:
        text = entry_file_text(entry)
        written = store.write(entry["id"], text)
        self._store = store
        self._entry = MappingProxyType(dict(entry))
        self._closed = False
        self._keeper = Keeper(store, entry["id"], text, written)
        self._keeper.start()
        remove_on_exit(entry["id"], self._remove_at_exit)

    @property
    def entry(self) -> Mapping[str, Any]:
        """The entry as written (read-only)."""
        return self._entry

    @property
    def id(self) -> str:
        return self._entry["id"]

    @property
    def file(self) -> str:
        """The entry file."""
        return self._store.entry_path(self.id)

    def close(self) -> None:
        """Stops keeping the entry and removes its file; later calls do nothing. (No lock: the
        SIGTERM handler may run it on a thread already inside it, and every step may be
        done twice.)"""
        if self._closed:
            return
        self._closed = True
        forget(self.id)
        self._keeper.stop()
        self._store.remove(self.id)

    def _remove_at_exit(self) -> None:
        try:
            self.close()
        except OSError as e:
            _log.warning("cannot unregister %s: %s", self.id, e)

    def __enter__(self) -> "Registration":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<wsreg.Registration {self.id} {'closed' if self._closed else 'open'}>"


def register(*, kind: str = "ws", port: int, name: Optional[str] = None, project: Optional[str] = None,
             session: Optional[str] = None, meta: Optional[Mapping[str, Any]] = None,
             url: Optional[str] = None, host: Optional[str] = None,
             registry: Optional[PathArg] = None) -> Registration:
    """Registers a server of this process listening on ``port``.

    Raises EntryError (a ValueError naming the field in ``.field`` and in its message) for a
    bad argument, with nothing written, and OSError when the registry directory cannot be
    used (FileNotFoundError when a directory given here or in WSREG_REGISTRY has no parent).
    """
    entry = build_entry(kind=kind, port=port, name=name, project=project, session=session,
                        host=host, url=url, meta=meta)
    directory, given = registry_dir(registry)
    return Registration(Store(directory, given), entry)
