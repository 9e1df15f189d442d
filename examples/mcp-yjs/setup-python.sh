#!/usr/bin/env bash
# Creates examples/mcp-yjs/.venv (gitignored) with the Python MCP server's pinned
# packages (py/requirements.txt: the `mcp` SDK 2.x, pycrdt, websockets). The wsreg
# library itself is the repository's python/wsreg (standard library only), found through
# PYTHONPATH, not installed. Run again: nothing is done while requirements.txt is unchanged.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/py/requirements.txt"
python="${PYTHON:-python3}"

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup-python.sh: $python is older than 3.10, which the mcp package needs" >&2
  exit 1
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "setup-python.sh: $venv ready ($(tr '\n' ' ' < <(grep -v '^#' "$req")))" >&2
