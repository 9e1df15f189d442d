"""One writer's side of the registry directory (docs/registry-format.md, "Writing" and
"Permissions"), as crates/wsreg/src/registry/store.rs does it.

An entry is written to ``.<id>.<random>.tmp`` (created 0600, exclusively) and renamed to
``<id>.json``; unregistering unlinks it. No lock, no fsync (the registry is soft state).
Before each write the directory is checked as the Rust writer checks it: created 0700
when missing (with its parents, each 0700, only for the default location), refused when
it is a symlink, not a directory or another user's, and set back to 0700 when others
may read it.
"""

import logging
import os
import secrets
import stat
from typing import NamedTuple, Optional, Tuple

_log = logging.getLogger("wsreg")

# The largest entry file a reader reads.
MAX_ENTRY_FILE_BYTES = 64 * 1024

# What identifies one version of a file without reading it: a rewrite renames a new inode
# in; an edit in place changes the size or a time.
FileId = Tuple[int, int, int, int, int]


def _file_id(st: os.stat_result) -> FileId:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_id_at(path: str) -> Optional[FileId]:
    """The identity of the file at ``path`` now (not following a symlink), or None."""
    try:
        return _file_id(os.lstat(path))
    except FileNotFoundError:
        return None


class Found(NamedTuple):
    """An entry file as a reader finds it: ``text`` is None when a reader would skip it
    unread (a symlink, not a regular file, another user's, over 64 KiB, not UTF-8)."""
    text: Optional[str]
    file_id: Optional[FileId]


class Store:
    def __init__(self, directory: str, given: bool) -> None:
        self.dir = directory
        self.given = given

    def entry_path(self, entry_id: str) -> str:
        return os.path.join(self.dir, f"{entry_id}.json")

    def write(self, entry_id: str, text: str) -> FileId:
        """Writes (or replaces) the entry file by rename; returns the identity the file had
        before the rename (the rename changes its ctime, so the next look reads it once)."""
        self._prepare_dir()
        tmp = os.path.join(self.dir, f".{entry_id}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                written = _file_id(os.fstat(f.fileno()))
            os.rename(tmp, self.entry_path(entry_id))
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return written

    def read(self, entry_id: str) -> Optional[Found]:
        """Reads the entry file as a reader would; None when there is none."""
        path = self.entry_path(entry_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError:
            return Found(None, file_id_at(path))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            readable = (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
                        and st.st_size <= MAX_ENTRY_FILE_BYTES)
            try:
                text = f.read(MAX_ENTRY_FILE_BYTES + 1).decode("utf-8") if readable else None
            except (OSError, UnicodeDecodeError):
                text = None
            return Found(text, _file_id(st))

    def remove(self, entry_id: str) -> bool:
        """Unlinks the entry file; says whether it was there."""
        try:
            os.unlink(self.entry_path(entry_id))
            return True
        except FileNotFoundError:
            return False

    def _prepare_dir(self) -> None:
        directory = self.dir
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            try:
                if self.given:
                    os.mkdir(directory, 0o700)
                else:
                    _make_dirs(directory)
            except FileExistsError:
                pass  # another writer made it a moment ago
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"cannot create the registry directory {directory}: its parent does not exist "
                    "(create it first, or leave out registry= and WSREG_REGISTRY to use the default)"
                ) from None
            st = os.lstat(directory)
        if stat.S_ISLNK(st.st_mode):
            raise PermissionError(f"refusing {directory}: it is a symbolic link")
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(f"refusing {directory}: it is not a directory")
        if st.st_uid != os.geteuid():
            raise PermissionError(
                f"refusing {directory}: it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            _log.warning("%s: mode was %o; setting it to 700", directory, mode)
            os.chmod(directory, 0o700)


def _make_dirs(directory: str) -> None:
    """``mkdir -p`` with every directory it creates 0700, as the Rust and Node writers do
    (``os.makedirs`` gives the mode to the last one only)."""
    parent = os.path.dirname(directory)
    if parent and parent != directory and not os.path.isdir(parent):
        _make_dirs(parent)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
