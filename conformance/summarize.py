"""Summarises an Autobahn report (index.json) and judges it.

A case passes when its behaviour is OK. The others are accepted only when they are
explained in docs/autobahn.md, and the rule for each is here:

- UNIMPLEMENTED in 12.* and 13.*: permessage-deflate, which wsreg does not offer (the
  cases check compression; without the extension they cannot run).
- NON-STRICT in 6.4.3 and 6.4.4: invalid UTF-8 is detected when the frame is complete,
  not at the first bad byte of a partial frame (the connection still fails with 1007).
- INFORMATIONAL: cases whose outcome the RFC leaves open (7.1.6, 7.13.*).

Anything else (FAILED, WRONG CODE, UNCLEAN, a missing case) fails the run.
"""

import fnmatch
import json
import sys
from collections import Counter

ACCEPTED = {
    "UNIMPLEMENTED": ["12.*", "13.*"],
    "NON-STRICT": ["6.4.3", "6.4.4"],
    "INFORMATIONAL": ["*"],
}
CLOSE_OK = {"OK", "INFORMATIONAL"}


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def main(path):
    with open(path) as f:
        index = json.load(f)
    (agent,) = index.values()
    counts = Counter()
    by_section = Counter()
    unexplained = []
    for case_id in sorted(agent, key=case_key):
        result = agent[case_id]
        behavior, close = result["behavior"], result["behaviorClose"]
        counts[behavior] += 1
        by_section[(case_id.split(".")[0], behavior)] += 1
        explained = behavior == "OK" or any(
            fnmatch.fnmatch(case_id, glob) for glob in ACCEPTED.get(behavior, [])
        )
        if not explained or close not in CLOSE_OK:
            unexplained.append(f"{case_id}: behavior={behavior}, close={close}")
    print(f"{len(agent)} cases: " + ", ".join(f"{n} {b}" for b, n in counts.most_common()))
    for (section, behavior), n in sorted(by_section.items(), key=lambda kv: (int(kv[0][0]), kv[0][1])):
        print(f"  section {section:>2}: {n:>3} {behavior}")
    if unexplained:
        print("not passed and not explained:", *unexplained, sep="\n  ", file=sys.stderr)
        return 1
    print("every case passed or is explained in docs/autobahn.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
