#!/usr/bin/env python3
"""Summarise the output of `scim2 --url BASE test --verbose` (scim2-cli + scim2-tester).

    python3 conformance/tester_report.py OUTPUT_FILE SCIM2_EXIT_CODE

scim2-cli prints one line per check, `STATUS title`, then the reason (indented by two
spaces; continuation lines are not) and, with --verbose, the data. scim2-cli itself exits 1 on anything but SUCCESS; this gate is
narrower: it fails only on ERROR (a MUST violated) or CRITICAL, and when no check ran
(discovery failed). Prints every check with its reason, the data only for ERROR/CRITICAL,
then a count per status. Standard library only.
"""

import collections
import re
import sys

STATUSES = ("SUCCESS", "COMPLIANT", "ACCEPTABLE", "DEVIATION", "ERROR", "CRITICAL", "SKIPPED")
FAILING = ("ERROR", "CRITICAL")
_LINE = re.compile(r"(%s) (.*)" % "|".join(STATUSES))


def parse(text: str) -> list:
    """Returns [(status, title, [indented lines])]."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    results = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            results.append((m.group(1), m.group(2), []))
        elif results and line.strip():
            # the reason may span several lines; the verbose data follows it
            results[-1][2].append(line[2:] if line.startswith("  ") else line)
    return results


def main(argv) -> int:
    path, exit_code = argv[0], argv[1] if len(argv) > 1 else "?"
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    results = parse(text)
    if not results:
        print(text)
        print("scim2-tester: no check ran (scim2 exit %s): server discovery failed?" % exit_code)
        return 1
    counts = collections.Counter(s for s, _, _ in results)
    for status, title, extra in results:
        print("%-10s %s" % (status, title))
        if extra:
            print("           %s" % extra[0])
        if status in FAILING:
            for line in extra[1:]:
                print("           %s" % (line if len(line) <= 1500 else line[:1500] + "..."))
    bad = [(s, t, e) for s, t, e in results if s in FAILING]
    summary = ", ".join("%d %s" % (counts[s], s) for s in STATUSES if counts[s])
    print()
    print("scim2-tester: %s" % summary)
    for s, t, e in bad:
        print("  %s %s: %s" % (s, t, e[0] if e else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
