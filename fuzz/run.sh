#!/usr/bin/env bash
# Build the cargo-fuzz targets and run each for a bounded time; fail on any crash.
#
#   bash fuzz/run.sh [SECONDS]     # SECONDS per target, default $FUZZ_SECONDS or 60
#   FUZZ_TARGETS="filter patch" bash fuzz/run.sh 30
#
# Targets (fuzz/fuzz_targets/): filter (list query → filter → SQL for both
# backends, run on SQLite), patch_path, patch (PatchOp applied to a stored
# resource), normalize (scim::quirks and canonicalize). Each starts from its
# committed corpus, fuzz/corpus/TARGET, read-only: what libFuzzer finds new goes
# to a scratch directory. A crash leaves its input in fuzz/artifacts/TARGET/
# (ignored by git); replay it with `RUSTC_BOOTSTRAP=1 cargo fuzz run --dev -s none
# TARGET fuzz/artifacts/TARGET/crash-…`.
#
# Only the stable toolchain is needed: cargo-fuzz passes nightly-only flags, which
# RUSTC_BOOTSTRAP=1 lets stable rustc accept. Built with `--dev` (the debug
# profile: overflow checks and debug assertions on, and no release build of the
# whole dependency tree) and without a sanitizer: the crate forbids `unsafe`, so
# what the targets look for are panics, failed invariants and stack overflows,
# which libFuzzer catches without one. cargo-fuzz is installed if missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PER_TARGET="${1:-${FUZZ_SECONDS:-60}}"
TARGETS="${FUZZ_TARGETS:-filter patch_path patch normalize}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

FLAGS=(--dev --sanitizer none)
start=$SECONDS
cargo fuzz build "${FLAGS[@]}" # every target: they share one build
echo "fuzz: built the targets in $((SECONDS - start)) s"

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/dirsync-fuzz.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
failed=""
for target in $TARGETS; do
  echo
  echo "=== fuzz: $target for ${PER_TARGET} s ==="
  mkdir -p "$SCRATCH/$target"
  # -timeout: one input taking longer is a finding (a filter must not hang a
  # listing); -max_len fits the corpus's 1,025-term filter; -rss_limit_mb keeps
  # a runaway allocation a finding rather than the machine's problem.
  set +e
  cargo fuzz run "${FLAGS[@]}" "$target" "$SCRATCH/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$PER_TARGET" -timeout=20 -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$SCRATCH/$target.log" 2>&1
  rc=$?
  set -e
  grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' "$SCRATCH/$target.log" | tail -n 60 || true
  [[ $rc -eq 0 ]] || failed="$failed $target"
done

echo
if [[ -n "$failed" ]]; then
  echo "fuzz: FAILED:$failed (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "fuzz: OK ($TARGETS, ${PER_TARGET} s each)"
