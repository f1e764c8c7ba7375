#!/usr/bin/env bash
# Conformance run against a FRESH dirsync server.
#
#   conformance/run.sh [BINARY] [DATABASE_URL]
#
#   BINARY        dirsync binary, default target/debug/dirsync (this script builds nothing)
#   DATABASE_URL  empty or sqlite:... -> a new temp SQLite file;
#                 postgres://...      -> a fresh database created beside the one named
#                                        (dropped again at exit)
#   SUITES        env, default "replay tester api browser webhooks": which parts to run
#
# (a) conformance/replay.py on ../shared/reference/entra_reference_postman.json (relative to
#     the repo root: CI clones the repo with shared/ beside it), with its own directory and
#     token because the file assumes an empty tenant;
# (b) scim2-tester through scim2-cli (`scim2 --url BASE test`, run by
#     conformance/scim2_test.py with a 60 s request timeout instead of httpx2's 5 s),
#     pinned in conformance/requirements.txt and installed into conformance/.venv;
#     fails on any ERROR or CRITICAL result.
# (c) schemathesis (pinned in conformance/requirements-api.txt, installed into
#     conformance/.venv-api) against the host API with a minted token: every
#     operation of /api/v1/openapi.json, every check but positive_data_acceptance
#     (an opaque cursor is any string to the schema, and only the server knows
#     which are its own), at least 1,000 generated cases; fails on any failure.
# (d) the pages in a real browser: Debian's Chromium, headless, driven by selenium
#     (pinned in conformance/requirements-browser.txt, installed into
#     conformance/.venv-browser) through Debian's chromedriver, given by path so
#     nothing is downloaded. conformance/test_browser.py checks the harness
#     (conformance/browser.py) itself, then every conformance/browser_*.py runs as
#     a unittest module against the server; /api/docs is browser_api_docs.py, the
#     operator dashboard (/admin, signed in as an operator this script creates)
#     browser_admin.py and its pull pages browser_admin_pull.py (against a fake
#     Entra ID, `dirsync dev fake-directory`, started here), the setup portal
#     (/portal: a tenant and its links made through the host API with an
#     operator's token, the local fake Entra ID started by the test, an expired
#     link made here) browser_portal.py; their screenshots of each page land in
#     $BROWSER_ARTIFACTS/screens (set BROWSER_ARTIFACTS to keep them). Fails
#     (never skips) without chromium and chromium-driver.
# (e) webhook deliveries checked by the official Standard Webhooks libraries:
#     conformance/webhooks.py (its receiver conformance/webhook_receiver.py verifies
#     with PyPI's standardwebhooks, pinned in conformance/requirements-webhooks.txt,
#     installed into conformance/.venv-webhooks) registers an endpoint with the CLI,
#     writes through SCIM, and checks every event arrives verified, in order, equal to
#     the feed, through two 500s and a secret rotation; then npm's standardwebhooks
#     (conformance/webhooks-node, `npm ci` from its lock) verifies the recorded
#     deliveries with the README's Node line. The server runs with delivery on, a
#     secret key, http to loopback allowed and 200 ms retries. Fails (never skips)
#     when a package cannot be installed or node/npm is missing.
# (f) conformance/fuzz.py (Python 3 standard library only), the seeded adversarial
#     fuzzer of issue 13: FUZZ_REQUESTS requests (default 5,000) drawn from FUZZ_SEED
#     (default 13, printed) against a directory of its own tenant (and a OneLogin one),
#     failing on any 5xx, reset, or 4xx without a SCIM error body; failing requests are
#     saved under the kept work directory for `fuzz.py --replay`; FUZZ_ARGS adds flags
#     (e.g. "--avoid long-filters" to look past a known failure). Not in the default
#     SUITES: CI runs it as a step of its own (SUITES=fuzz).
# Exits non-zero if any part fails. The server is always killed; its log tail is
# printed on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${1:-target/debug/dirsync}"
DB_ARG="${2:-}"
SUITES="${SUITES:-replay tester api browser webhooks}"
ENTRA_FILE="${ENTRA_FILE:-../shared/reference/entra_reference_postman.json}"
PYTHON="${PYTHON:-python3}"

[[ "$BIN" = /* ]] || BIN="$ROOT/$BIN"
if [[ ! -x "$BIN" ]]; then
  echo "conformance: no executable at $BIN (build it first: cargo build --bin dirsync)" >&2
  exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dirsync-conformance.XXXXXX")"
LOG="$WORK/server.log"
SERVER_PID=""
FAKE_PID=""
PG_DB_URL=""
STATUS=0

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$FAKE_PID" ]]; then
    kill "$FAKE_PID" 2>/dev/null || true
    wait "$FAKE_PID" 2>/dev/null || true
  fi
  if [[ -n "$PG_DB_URL" ]]; then
    "$PYTHON" conformance/pgdb.py drop "$PG_DB_URL" || echo "conformance: could not drop $PG_DB_URL" >&2
  fi
  if [[ $rc -ne 0 && -f "$LOG" ]]; then
    echo "---- server log (last 60 lines of $LOG) ----"
    tail -n 60 "$LOG" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-600 || true
    echo "---- end of server log ----"
  fi
  if [[ $rc -eq 0 && -z "${KEEP_WORK:-}" ]]; then
    rm -rf "$WORK"
  else
    echo "conformance: work files kept in $WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- database ---------------------------------------------------------------
case "$DB_ARG" in
  "" | sqlite:*)
    BACKEND=sqlite
    DB_URL="sqlite://$WORK/dirsync.db?mode=rwc"
    ;;
  postgres://* | postgresql://*)
    BACKEND=postgres
    PG_DB_URL="$("$PYTHON" conformance/pgdb.py create "$DB_ARG" dirsync_conf)"
    DB_URL="$PG_DB_URL"
    ;;
  *)
    echo "conformance: unsupported database URL: $DB_ARG" >&2
    exit 2
    ;;
esac
echo "conformance: backend=$BACKEND database=$DB_URL"

dirsync() { "$BIN" --database-url "$DB_URL" "$@"; }
json_field() { "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# A virtual environment with a requirements file's pins, rebuilt when the file
# changes: ensure_venv VENV REQUIREMENTS
ensure_venv() {
  local venv="$1" requirements="$2" stamp="$1/.requirements.sha256" want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "conformance: installing $requirements into $venv"
    # Each step returns on failure: callers in an `if` run without errexit.
    "$PYTHON" -m venv "$venv" || return 1
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" || return 1
    echo "$want" >"$stamp" || return 1
  fi
}

# ---- tenant, directories, tokens (before the server starts: no SQLite contention) ----
dirsync migrate >>"$LOG" 2>&1
dirsync tenant create conformance --json >"$WORK/tenant.json"
# The dashboard's operator (conformance/browser_admin.py signs in as them);
# the password goes through standard input and the environment, never a
# command line.
ADMIN_EMAIL="operator@conformance.test"
ADMIN_PASSWORD="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')"
printf '%s\n' "$ADMIN_PASSWORD" | dirsync operator create "$ADMIN_EMAIL" --password-stdin >>"$LOG" 2>&1
new_token() { # $1 = directory name, $2 = vendor[, $3 = tenant] -> prints the token
  local dir_id
  dirsync directory create --tenant "${3:-conformance}" --name "$1" --vendor "$2" --json >"$WORK/dir-$1.json"
  dir_id="$(json_field id <"$WORK/dir-$1.json")"
  dirsync token create --directory "$dir_id" --json >"$WORK/token-$1.json"
  json_field token <"$WORK/token-$1.json"
}
# An expired setup link for browser_portal.py: made with the CLI, its expiry then
# moved into the past in the database (as tests/api/portal.rs does through the store).
dirsync setup-link create --tenant conformance --expires 1m --public-url http://expired.invalid \
  --json >"$WORK/setup-link-expired.json"
EXPIRED_LINK_ID="$(json_field id <"$WORK/setup-link-expired.json")"
EXPIRED_LINK_PATH="$(json_field url <"$WORK/setup-link-expired.json")"
EXPIRED_LINK_PATH="${EXPIRED_LINK_PATH#http://expired.invalid}"
case "$BACKEND" in
  sqlite)
    "$PYTHON" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE setup_links SET expires_at = 1 WHERE id = ?", (sys.argv[2],)); c.commit()' \
      "$WORK/dirsync.db" "$EXPIRED_LINK_ID"
    ;;
  postgres)
    psql -q "$DB_URL" -c "UPDATE setup_links SET expires_at = 1 WHERE id = '$EXPIRED_LINK_ID'" >>"$LOG"
    ;;
esac
TOKEN_ENTRA="$(new_token entra-replay entra)"
TOKEN_TESTER="$(new_token scim2-tester generic)"
TOKEN_API_SEED="$(new_token api-seed generic)"
# The webhooks suite's own tenant: its endpoint sees only the events it causes.
dirsync tenant create webhooks --json >"$WORK/tenant-webhooks.json"
TOKEN_WEBHOOKS="$(new_token webhooks-scim generic webhooks)"
# The fuzzer's own tenant: what it writes never meets another suite's resources.
if [[ " $SUITES " == *" fuzz "* ]]; then
  dirsync tenant create fuzz --json >"$WORK/tenant-fuzz.json"
  TOKEN_FUZZ="$(new_token fuzz generic fuzz)"
  TOKEN_FUZZ_ONELOGIN="$(new_token fuzz-onelogin onelogin fuzz)"
fi
# The host API's key for this run only (through the environment, never a flag).
export DIRSYNC_API_JWT_SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')"
# Webhooks (suite webhooks, and the API's /webhooks for schemathesis): delivery on (the
# default, said here because the suite needs it), a key to seal signing secrets (the
# CLI needs it too), http receivers on loopback, and retries short enough to watch a
# failure recover.
export DIRSYNC_WEBHOOK_DELIVERY=true
export DIRSYNC_SECRET_KEY="$("$BIN" secret-key generate)"
export DIRSYNC_WEBHOOK_ALLOW_HTTP_LOOPBACK=true
export DIRSYNC_WEBHOOK_RETRIES=200ms,200ms,200ms

# The dashboard's pull pages (conformance/browser_admin_pull.py): a fake Entra ID
# (`dirsync dev fake-directory`) and a pull directory connected to it, in a tenant
# of its own, with no schedule (the browser starts every run).
if [[ " $SUITES " == *" browser "* ]]; then
  "$BIN" dev fake-directory entra --users 300 --groups 3 --connection-file "$WORK/fake-connection.json" \
    >>"$WORK/fake.log" 2>&1 &
  FAKE_PID=$!
  for _ in $(seq 1 100); do [[ -s "$WORK/fake-connection.json" ]] && break; sleep 0.1; done
  dirsync tenant create browser-pull --json >"$WORK/tenant-browser-pull.json"
  dirsync connection create --tenant browser-pull --name corp --file "$WORK/fake-connection.json" \
    --no-schedule >>"$LOG" 2>&1
fi

# ---- server -------------------------------------------------------------------
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT/scim/v2"
"$BIN" --database-url "$DB_URL" serve --listen "127.0.0.1:$PORT" --public-url "http://127.0.0.1:$PORT" \
  >>"$LOG" 2>&1 &
SERVER_PID=$!
echo "conformance: server pid $SERVER_PID on $BASE, log $LOG"
ready=""
for _ in $(seq 1 120); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "conformance: server exited during start-up" >&2
    exit 1
  fi
  if "$PYTHON" - "$BASE/ServiceProviderConfig" <<'EOF' 2>/dev/null; then
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
    ready=1
    break
  fi
  sleep 0.5
done
if [[ -z "$ready" ]]; then
  echo "conformance: server not ready after 60 s" >&2
  exit 1
fi

REPLAY_SUMMARY="not run"
TESTER_SUMMARY="not run"
API_SUMMARY="not run"
BROWSER_SUMMARY="not run"
WEBHOOKS_SUMMARY="not run"
FUZZ_SUMMARY="not run"
PAGES=()

# ---- (a) Entra reference replay -------------------------------------------------
if [[ " $SUITES " == *" replay "* ]]; then
  echo
  echo "=== replay: $ENTRA_FILE ($BACKEND) ==="
  if [[ ! -f "$ENTRA_FILE" ]]; then
    echo "conformance: $ENTRA_FILE not found (shared/ must sit beside the repo)" >&2
    REPLAY_SUMMARY="MISSING FILE"
    STATUS=1
  else
    set +e
    "$PYTHON" conformance/replay.py --base "$BASE" --token "$TOKEN_ENTRA" "$ENTRA_FILE" | tee "$WORK/replay.out"
    rc=${PIPESTATUS[0]}
    set -e
    REPLAY_SUMMARY="$(tail -n 1 "$WORK/replay.out")"
    [[ $rc -eq 0 ]] || STATUS=1
  fi
fi

# ---- (b) scim2-tester via scim2-cli --------------------------------------------
if [[ " $SUITES " == *" tester "* ]]; then
  echo
  echo "=== scim2-tester ($BACKEND) ==="
  VENV="$ROOT/conformance/.venv"
  ensure_venv "$VENV" conformance/requirements.txt
  # The header goes through the environment so the token is not on a command line.
  set +e
  SCIM_CLI_HEADERS="Authorization: Bearer $TOKEN_TESTER" NO_COLOR=1 \
    "$VENV/bin/python" conformance/scim2_test.py --url "$BASE" test --verbose >"$WORK/tester.out" 2>&1
  rc=$?
  "$PYTHON" conformance/tester_report.py "$WORK/tester.out" "$rc" | tee "$WORK/tester.report"
  rc=${PIPESTATUS[0]}
  set -e
  TESTER_SUMMARY="$(grep '^scim2-tester: ' "$WORK/tester.report" | tail -n 1 | cut -d' ' -f2-)"
  [[ $rc -eq 0 ]] || STATUS=1
fi

# ---- (c) schemathesis against the host API ---------------------------------------
if [[ " $SUITES " == *" api "* ]]; then
  echo
  echo "=== schemathesis: /api/v1 ($BACKEND) ==="
  VENV_API="$ROOT/conformance/.venv-api"
  ensure_venv "$VENV_API" conformance/requirements-api.txt
  # Something to find: users and a group of the tenant, through SCIM.
  "$PYTHON" conformance/seed_api.py "$BASE" "$TOKEN_API_SEED"
  API_TOKEN="$(dirsync api-token --tenant conformance --scope "read write admin" --ttl 1h)"
  set +e
  ST_TOKEN="$API_TOKEN" NO_COLOR=1 "$VENV_API/bin/schemathesis" --config-file conformance/schemathesis.toml \
    run "http://127.0.0.1:$PORT/api/v1/openapi.json" --checks all --exclude-checks positive_data_acceptance \
    --workers 2 >"$WORK/schemathesis.out" 2>&1
  rc=$?
  set -e
  tail -n 25 "$WORK/schemathesis.out"
  generated="$(grep -oE '[0-9]+ generated' "$WORK/schemathesis.out" | tail -n 1 | cut -d' ' -f1)"
  API_SUMMARY="${generated:-0} cases generated, exit $rc"
  if [[ $rc -ne 0 ]]; then
    STATUS=1
  elif [[ "${generated:-0}" -lt 1000 ]]; then
    echo "conformance: schemathesis generated only ${generated:-0} cases (at least 1,000 required)" >&2
    STATUS=1
  fi
fi

# ---- (d) pages in a real browser -------------------------------------------------
if [[ " $SUITES " == *" browser "* ]]; then
  echo
  echo "=== browser: pages in headless Chromium ($BACKEND) ==="
  CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
  CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
  if [[ ! -x "$CHROMIUM" || ! -x "$CHROMEDRIVER" ]]; then
    echo "conformance: FAILED: the browser suite needs Debian's Chromium and its driver" \
      "($CHROMIUM, $CHROMEDRIVER): apt-get install chromium chromium-driver" >&2
    BROWSER_SUMMARY="chromium or chromedriver missing (apt-get install chromium chromium-driver)"
    STATUS=1
  else
    VENV_BROWSER="$ROOT/conformance/.venv-browser"
    ensure_venv "$VENV_BROWSER" conformance/requirements-browser.txt
    PAGES=()
    for page in conformance/browser_*.py; do PAGES+=("$(basename "$page" .py)"); done
    # A reader's token, through the environment (never on a command line).
    BROWSER_TOKEN="$(dirsync api-token --tenant conformance --scope read --ttl 1h)"
    # The pull pages' test narrows its connection's scope through the host API.
    BROWSER_PULL_TOKEN="$(dirsync api-token --tenant browser-pull --scope 'read write admin' --ttl 1h)"
    # The setup portal's test makes its tenant and links as a host application.
    PORTAL_API_TOKEN="$(dirsync api-token --tenant '*' --scope admin --ttl 1h)"
    # Screenshots of the pages (screens/) and of failures; kept when set
    # from outside, else in the work folder (removed after a clean run).
    BROWSER_ARTIFACTS="${BROWSER_ARTIFACTS:-$WORK/browser}"
    set +e
    (cd conformance && CHROMIUM="$CHROMIUM" CHROMEDRIVER="$CHROMEDRIVER" \
      DIRSYNC_ORIGIN="http://127.0.0.1:$PORT" DIRSYNC_BROWSER_API_TOKEN="$BROWSER_TOKEN" \
      DIRSYNC_ADMIN_EMAIL="$ADMIN_EMAIL" DIRSYNC_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
      DIRSYNC_PULL_TENANT=browser-pull DIRSYNC_PULL_API_TOKEN="$BROWSER_PULL_TOKEN" \
      BROWSER_ARTIFACTS="$BROWSER_ARTIFACTS" DIRSYNC_PORTAL_API_TOKEN="$PORTAL_API_TOKEN" \
      DIRSYNC_BIN="$BIN" DIRSYNC_EXPIRED_SETUP_LINK="$EXPIRED_LINK_PATH" \
      "$VENV_BROWSER/bin/python" -m unittest -v test_browser "${PAGES[@]}") 2>&1 | tee "$WORK/browser.out"
    rc=${PIPESTATUS[0]}
    set -e
    BROWSER_SUMMARY="$(grep -E '^Ran [0-9]+ tests?' "$WORK/browser.out" | tail -n 1), $(tail -n 1 "$WORK/browser.out")"
    if [[ -d "$BROWSER_ARTIFACTS/screens" ]]; then
      echo "browser: screenshots in $BROWSER_ARTIFACTS/screens:"
      (cd "$BROWSER_ARTIFACTS/screens" && ls -1 ./*.png | sed 's|^\./|  |')
    fi
    [[ $rc -eq 0 ]] || STATUS=1
  fi
fi

# ---- (e) webhooks, checked by the Standard Webhooks libraries -------------------
if [[ " $SUITES " == *" webhooks "* ]]; then
  echo
  echo "=== webhooks: Standard Webhooks libraries from PyPI and npm ($BACKEND) ==="
  VENV_WEBHOOKS="$ROOT/conformance/.venv-webhooks"
  NODE_DIR="$ROOT/conformance/webhooks-node"
  if ! ensure_venv "$VENV_WEBHOOKS" conformance/requirements-webhooks.txt; then
    echo "conformance: FAILED: could not install conformance/requirements-webhooks.txt" >&2
    WEBHOOKS_SUMMARY="could not install conformance/requirements-webhooks.txt"
    STATUS=1
  elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "conformance: FAILED: the webhooks suite needs Node.js and npm (apt-get install nodejs npm)" >&2
    WEBHOOKS_SUMMARY="node or npm missing (apt-get install nodejs npm)"
    STATUS=1
  elif ! (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error); then
    echo "conformance: FAILED: npm ci in $NODE_DIR" >&2
    WEBHOOKS_SUMMARY="could not install conformance/webhooks-node (npm ci)"
    STATUS=1
  else
    set +e
    SCIM_TOKEN="$TOKEN_WEBHOOKS" "$VENV_WEBHOOKS/bin/python" conformance/webhooks.py \
      --dirsync "$BIN" --database-url "$DB_URL" --tenant webhooks --scim-base "$BASE" \
      --node-dir "$NODE_DIR" --work "$WORK" 2>&1 | tee "$WORK/webhooks.out"
    rc=${PIPESTATUS[0]}
    set -e
    WEBHOOKS_SUMMARY="$(grep '^webhooks: ' "$WORK/webhooks.out" | tail -n 1 | cut -d' ' -f2-)"
    WEBHOOKS_SUMMARY="${WEBHOOKS_SUMMARY:-no result}, exit $rc"
    [[ $rc -eq 0 ]] || STATUS=1
  fi
fi

# ---- (f) the seeded adversarial fuzzer (issue 13) ---------------------------------
if [[ " $SUITES " == *" fuzz "* ]]; then
  echo
  echo "=== fuzz: conformance/fuzz.py ($BACKEND) ==="
  set +e
  "$PYTHON" conformance/fuzz.py --base "$BASE" --token "$TOKEN_FUZZ" --token "$TOKEN_FUZZ_ONELOGIN" \
    --seed "${FUZZ_SEED:-13}" --requests "${FUZZ_REQUESTS:-5000}" --work "$WORK" ${FUZZ_ARGS:-} 2>&1 | tee "$WORK/fuzz.out"
  rc=${PIPESTATUS[0]}
  set -e
  FUZZ_SUMMARY="$(grep -aE '^fuzz: [0-9]+ requests in' "$WORK/fuzz.out" | tail -n 1 | cut -d' ' -f2-)"
  FUZZ_SUMMARY="${FUZZ_SUMMARY:-no result}, exit $rc"
  [[ $rc -eq 0 ]] || STATUS=1
fi

# ---- summary --------------------------------------------------------------------
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "conformance: the server died during the run" >&2
  STATUS=1
fi
echo
echo "=== conformance summary ($BACKEND) ==="
echo "replay (entra_reference_postman): $REPLAY_SUMMARY"
echo "scim2-tester: $TESTER_SUMMARY"
echo "schemathesis (host API): $API_SUMMARY"
echo "browser (headless Chromium: ${PAGES[*]:-no pages}): $BROWSER_SUMMARY"
echo "webhooks (standardwebhooks from PyPI and npm): $WEBHOOKS_SUMMARY"
echo "fuzz (conformance/fuzz.py): $FUZZ_SUMMARY"
if [[ $STATUS -ne 0 ]]; then
  echo "conformance: FAILED ($BACKEND)"
else
  echo "conformance: OK ($BACKEND)"
fi
exit $STATUS
