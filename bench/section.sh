#!/usr/bin/env bash
# Puts one benchmark's generated section into docs/benchmarks.md without rerunning the
# others: `bench/section.sh NAME < section.md` replaces the block between
# `<!-- section NAME -->` and `<!-- /section NAME -->`, or appends it when there is none.
# `wsreg-bench run` (bench/run.sh) keeps these blocks when it rewrites the file, so each
# benchmark (the Yjs server, etcd, health probes) owns its block and its rerun command.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bench/section.sh NAME < section.md}
doc=docs/benchmarks.md
body=$(cat)
python3 - "$doc" "$name" "$body" <<'PY'
import re, sys
path, name, body = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path, encoding="utf-8").read()
block = f"<!-- section {name} -->\n{body.strip()}\n<!-- /section {name} -->\n"
pattern = re.compile(rf"<!-- section {re.escape(name)} -->\n.*?<!-- /section {re.escape(name)} -->\n", re.S)
text = pattern.sub(lambda _: block, text, count=1) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
open(path, "w", encoding="utf-8").write(text)
PY
echo "bench/section.sh: wrote section '$name' of $doc" >&2
