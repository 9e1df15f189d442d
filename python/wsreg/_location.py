"""Where the registry directory is (docs/registry-format.md, "Where it lives").

The ``registry`` argument, else ``WSREG_REGISTRY``, else ``~/.peer-plan/servers``. A
path ending in ``.json`` names the legacy file of version 1, and the directory is that
path without ``.json``. The path is made absolute once, so a later ``chdir`` does not
move the entry. ``given`` tells a path the user named from the default: only the
default is created with its parents (a typo must not start a registry no reader looks at).
"""

import os
from typing import Optional, Tuple, Union

from ._entry import EntryError

PathArg = Union[str, "os.PathLike[str]"]


def registry_dir(registry: Optional[PathArg]) -> Tuple[str, bool]:
    if registry is not None and not isinstance(registry, (str, os.PathLike)):
        raise EntryError("registry", f"registry must be a path (got {type(registry).__name__})")
    named = os.fspath(registry) if registry else os.environ.get("WSREG_REGISTRY", "")
    if not named:
        return os.path.join(os.path.expanduser("~"), ".peer-plan", "servers"), False
    stem = named[: -len(".json")] if named.endswith(".json") else ""
    return os.path.abspath(stem if stem and not stem.endswith("/") else named), True
