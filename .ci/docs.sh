#!/usr/bin/env bash
# The repository explains itself: every Markdown document the code, the tests, the
# scripts and the benchmark name (`docs/vendor-quirks.md`, `ARCHITECTURE.md`) is in
# the repository, at that path from its root; a bare name is a file at the root.
# A name outside it (`../shared/…`, a design note no clone has) fails.
# ARCHITECTURE.md, "Documents", lists what docs/ holds.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# A name starts after a character that cannot be part of a path (so the `%d.md` of
# a format string is no citation) and may climb with `../`.
name='(^|[^A-Za-z0-9_./%-])(\.\./)*([A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.md\b'
while IFS= read -r hit; do
  where=${hit%:*}
  doc=${hit##*:}
  doc=${doc#[!A-Za-z0-9_.]}
  case "$doc" in
    # What bench/run.py writes, not a document it cites.
    bench/results-*) continue ;;
  esac
  if [[ "$doc" == ../* ]]; then
    echo "docs: $where cites $doc, outside the repository; put what the code relies on in docs/"
    fail=1
  elif [ ! -f "$doc" ]; then
    echo "docs: $where cites $doc, which the repository does not hold (docs/ does: $(cd docs && echo *.md))"
    fail=1
  fi
done < <(grep -rnoE "$name" src tests .ci bench conformance migrations fuzz \
  --exclude-dir='.venv*' --exclude-dir=node_modules --exclude-dir=target || true)
[ "$fail" = 0 ] && echo "docs: ok"
exit "$fail"
