"""The entry a Python server writes (docs/registry-format.md, "One entry, one file").

Built from the caller's arguments, checked against the rules and limits of the Rust
library (crates/wsreg/src/registry/model.rs), and serialised in its canonical form: the
bytes ``model::entry_file_json`` writes for the same fields (compact separators, UTF-8
rather than ``\\u`` escapes, fields in the format's order), so a reader cannot tell a
file written from Python from one written by Rust.

Everything is checked before anything touches the disk; a bad argument raises an
EntryError (a ValueError) naming the field. Lengths are UTF-8 bytes, as in Rust, and a
string that is not valid UTF-8 (a lone surrogate) is refused, as are NaN and infinities
in ``meta`` (JSON has no such numbers; Python would write them anyway).
"""

import itertools
import json
import os
import re
import secrets
import socket
import time
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional

from ._start_time import own_start_time

MAX_KIND_BYTES = 32
MAX_LABEL_BYTES = 256
MAX_HOST_BYTES = 255
MAX_URL_BYTES = 2048
MAX_META_BYTES = 4096

_KIND = re.compile(r"[a-z][a-z0-9-]*\Z")
# The id alphabet of the Rust library: base 32 without i, l, o, u.
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_COUNTER = itertools.count()
_KEYS = ("id", "kind", "name", "project", "session", "host", "port", "url",
         "pid", "pidStartTime", "startedAt", "ttlSecs", "heartbeatAt", "meta")


class EntryError(ValueError):
    """A rejected argument; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def build_entry(*, kind: str, port: int, name: Optional[str], project: Optional[str],
                session: Optional[str], host: Optional[str], url: Optional[str],
                meta: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The entry for this process, every field in the canonical order."""
    if not isinstance(kind, str) or len(kind) > MAX_KIND_BYTES or not _KIND.match(kind):
        raise EntryError("kind", f"kind must be a lowercase word of at most {MAX_KIND_BYTES} bytes "
                                 f"([a-z][a-z0-9-]*) (got {kind!r})")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise EntryError("port", f"port must be an integer from 1 to 65535 (got {port!r})")
    url = _text("url", f"ws://127.0.0.1:{port}/" if url is None else url, MAX_URL_BYTES)
    if not url.startswith(("ws://", "wss://")):
        raise EntryError("url", f"url must start with ws:// or wss:// (got {url!r})")
    return {
        "id": f"{kind}-{_sortable_id()}",
        "kind": kind,
        "name": _optional_text("name", name, MAX_LABEL_BYTES),
        "project": _optional_text("project", project, MAX_LABEL_BYTES),
        "session": _optional_text("session", session, MAX_LABEL_BYTES),
        "host": _text("host", socket.gethostname() if host is None else host, MAX_HOST_BYTES),
        "port": port,
        "url": url,
        "pid": os.getpid(),
        "pidStartTime": own_start_time(),
        "startedAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "ttlSecs": None,
        "heartbeatAt": None,
        "meta": _checked_meta({} if meta is None else meta),
    }


def entry_file_text(entry: Mapping[str, Any]) -> str:
    """An entry file's content: ``{"version":2, …the entry's fields…}`` and a newline."""
    return _dumps({"version": 2, **entry}) + "\n"


def canonical_file_text(doc: Any) -> Optional[str]:
    """What entry_file_text makes of a parsed file, or None when it is no entry file: two
    files that say the same in another layout or key order (or with unknown fields)
    compare equal."""
    if not isinstance(doc, dict) or doc.get("version") != 2:
        return None
    fields = {key: doc.get(key) for key in _KEYS}
    if fields["meta"] is None:
        fields["meta"] = {}
    try:
        return entry_file_text(fields)
    except ValueError:
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sortable_id() -> str:
    """22 base-32 characters that sort in creation order, as the Rust library's ids do:
    10 of the millisecond clock and 3 of a per-process counter, most significant first
    (readers list entries of the same ``startedAt`` millisecond by id), then 9 random."""
    def digits(value: int, chars: int) -> str:
        return "".join(_ID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(chars)))
    count = next(_ID_COUNTER) & 0x7FFF
    random = "".join(_ID_ALPHABET[b & 31] for b in secrets.token_bytes(9))
    return digits(time.time_ns() // 1_000_000, 10) + digits(count, 3) + random


def _text(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise EntryError(field, f"{field} must be a string (got {type(value).__name__})")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise EntryError(field, f"{field} is not valid UTF-8 text (it holds a lone surrogate)") from None
    if size > limit:
        raise EntryError(field, f"{field} is {size} bytes, over the limit of {limit}")
    return value


def _optional_text(field: str, value: Any, limit: int) -> Optional[str]:
    return None if value is None else _text(field, value, limit)


def _checked_meta(meta: Any) -> Dict[str, Any]:
    """A mapping that serialises to JSON of at most MAX_META_BYTES, returned as it will be
    written."""
    if not isinstance(meta, Mapping):
        raise EntryError("meta", "meta must be a mapping (a dict)")
    try:
        text = _dumps(dict(meta))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError) as e:
        raise EntryError("meta", f"meta cannot be written as JSON: {e}") from None
    if size > MAX_META_BYTES:
        raise EntryError("meta", f"meta is {size} bytes, over the limit of {MAX_META_BYTES}")
    return json.loads(text)
