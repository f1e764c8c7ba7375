#!/usr/bin/env python3
"""Replay a vendor step file (docs/replay-steps.md) against a SCIM server.

    python3 conformance/replay.py --base http://127.0.0.1:PORT/scim/v2 --token T FILE.json

Standard library only. Prints one line per step (PASS / WARN / FAIL, index, name,
reason) and closes with a line `N passed, M failed`. Exit status 1 when any required
assertion failed, 2 on a usage or file error.

Not required (reported as WARN, never a failure): `equals_recommended`
(docs/replay-steps.md: "not required by the vendor test; recommended target
behaviour") and `absent_per_rfc` ("vendor tolerates either").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
import uuid

MISSING = object()  # a JSON path that does not resolve

# Characters legal in a URI outside of percent-escapes (RFC 3986 §2.2, §2.3), except
# `[`/`]` (legal only in an IP-literal host) and `#` (never sent: a request path has no
# fragment). `%` is handled separately: kept when it starts a valid %XX escape.
_URI_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "-._~" ":/?@" "!$&'()*+,;="
)
_HEX = frozenset("0123456789abcdefABCDEF")


def encode_path(path: str) -> str:
    """Percent-encode what is not legal in a URI; keep existing %XX escapes and `+`."""
    out = []
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "%" and len(path) >= i + 3 and path[i + 1] in _HEX and path[i + 2] in _HEX:
            out.append(path[i : i + 3])
            i += 3
            continue
        if ch in _URI_SAFE:
            out.append(ch)
        else:
            out.extend("%{:02X}".format(b) for b in ch.encode("utf-8"))
        i += 1
    return "".join(out)


def join_url(base: str, path: str) -> str:
    base = base.rstrip("/")
    if not path.startswith("/"):
        path = "/" + path
    return base + encode_path(path)


# ---------------------------------------------------------------------------
# Placeholders


class UndefinedVariable(Exception):
    pass


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.$-]+)\s*\}\}")


def _as_text(v) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v)


def substitute(value, variables: dict):
    """Replace `{{uuid}}` (fresh per occurrence) and `{{var}}` in every string (and key)."""
    if isinstance(value, str):

        def repl(m):
            name = m.group(1)
            if name == "uuid":
                return str(uuid.uuid4())
            if name in variables:
                return _as_text(variables[name])
            raise UndefinedVariable(name)

        return _PLACEHOLDER.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------
# JSON paths


class PathSyntaxError(ValueError):
    pass


def tokenize(path: str) -> list:
    """Split a path into tokens: ("key", s) | ("index", n) | ("all",) | ("filter", k, v).

    Dots separate keys, `\\.` is a literal dot, `[n]`, `[*]`, `[attr=value]` follow a key.
    An extension URN is one key: `urn:...:2.0:User.manager.value` -> `urn:...:2.0:User`,
    `manager`, `value`; resolution also accepts a longer literal key present in the
    object (see _walk).
    """
    tokens = []
    i = 0
    n = len(path)
    expect_key = True
    while i < n:
        ch = path[i]
        if ch == "[":
            j = path.find("]", i)
            if j < 0:
                raise PathSyntaxError("unclosed [ in %r" % path)
            inner = path[i + 1 : j].strip()
            if inner == "*":
                tokens.append(("all",))
            elif re.fullmatch(r"-?\d+", inner):
                tokens.append(("index", int(inner)))
            elif "=" in inner:
                k, v = inner.split("=", 1)
                k = k.strip()
                v = v.strip()
                if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                    v = v[1:-1]
                tokens.append(("filter", k, v))
            else:
                raise PathSyntaxError("bad selector [%s] in %r" % (inner, path))
            i = j + 1
            expect_key = False
            continue
        if ch == ".":
            if expect_key:
                raise PathSyntaxError("empty key in %r" % path)
            i += 1
            expect_key = True
            continue
        if not expect_key:
            raise PathSyntaxError("expected . or [ at %d in %r" % (i, path))
        if path[i : i + 4].lower() == "urn:":
            # URN versions contain dots ("2.0") but attribute names start with a letter
            # (RFC 7643 §2.1 ATTRNAME): a dot followed by a digit stays in the key.
            buf = []
            while i < n and path[i] != "[":
                if path[i] == "\\" and i + 1 < n:
                    buf.append(path[i + 1])
                    i += 2
                    continue
                if path[i] == "." and not (i + 1 < n and path[i + 1].isdigit()):
                    break
                buf.append(path[i])
                i += 1
            tokens.append(("key", "".join(buf)))
            expect_key = False
            continue
        buf = []
        while i < n and path[i] not in ".[":
            if path[i] == "\\" and i + 1 < n:
                buf.append(path[i + 1])
                i += 2
                continue
            buf.append(path[i])
            i += 1
        tokens.append(("key", "".join(buf)))
        expect_key = False
    if expect_key and tokens:
        raise PathSyntaxError("trailing dot in %r" % path)
    return tokens


def _filter_match(elem_value, want: str) -> bool:
    if isinstance(elem_value, bool):
        return want.lower() == ("true" if elem_value else "false")
    if isinstance(elem_value, (int, float)):
        try:
            return float(want) == float(elem_value)
        except ValueError:
            return False
    return elem_value == want


def _step(value, tok):
    """Apply one non-wildcard token to one value. Returns the value or MISSING."""
    kind = tok[0]
    if kind == "key":
        if isinstance(value, dict):
            return value.get(tok[1], MISSING)
        if isinstance(value, list) and tok[1] == "length":
            return len(value)
        return MISSING
    if kind == "index":
        if isinstance(value, list) and -len(value) <= tok[1] < len(value):
            return value[tok[1]]
        return MISSING
    if kind == "filter":
        if isinstance(value, list):
            for el in value:
                if isinstance(el, dict) and tok[1] in el and _filter_match(el[tok[1]], tok[2]):
                    return el
        return MISSING
    raise AssertionError(tok)


def _walk(value, tokens: list, i: int) -> tuple:
    """Returns (values, multi): the values reached, and whether a [*] was crossed."""
    if i == len(tokens):
        return [value], False
    tok = tokens[i]
    if tok[0] == "all":
        if not isinstance(value, list):
            return [], False
        found = []
        for el in value:
            found.extend(_walk(el, tokens, i + 1)[0])
        return found, True
    if tok[0] == "key" and tok[1].lower().startswith("urn:") and isinstance(value, dict):
        # A URN key could itself contain dots after its last colon: prefer the longest
        # literal key present in the object.
        for j in range(len(tokens), i + 1, -1):
            if all(t[0] == "key" for t in tokens[i:j]):
                joined = ".".join(t[1] for t in tokens[i:j])
                if joined in value:
                    return _walk(value[joined], tokens, j)
    nxt = _step(value, tok)
    if nxt is MISSING:
        return [], False
    return _walk(nxt, tokens, i + 1)


def resolve(doc, path: str):
    """Resolve `path` in `doc`. Returns (value or MISSING, is_list_path).

    `members[*].value` gives the list of values found (a list path); it is MISSING only
    when `members` itself is not an array.
    """
    if doc is MISSING:
        return MISSING, False
    if path in ("", "$"):
        return doc, False
    found, multi = _walk(doc, tokenize(path), 0)
    if multi:
        return found, True
    return (found[0] if found else MISSING), False


# ---------------------------------------------------------------------------
# Assertions


def strict_equal(a, b) -> bool:
    """Deep JSON equality; booleans never equal numbers, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return a == b


def _num(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v.strip()) if v.strip() else None
        except ValueError:
            return None
    return None


def equals_string_or_number(actual, expected) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    if isinstance(actual, str) and isinstance(expected, str) and actual == expected:
        return True
    a, e = _num(actual), _num(expected)
    return a is not None and e is not None and a == e


def equals_string_or_bool(actual, expected) -> bool:
    def norm(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower()
        return None

    a, e = norm(actual), norm(expected)
    return a is not None and a == e


def is_not_empty(v) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, (str, list, dict)) and len(v) == 0:
        return False
    return True


def _contains(container, item) -> bool:
    if isinstance(container, list):
        return any(strict_equal(x, item) for x in container)
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    if isinstance(container, dict) and isinstance(item, str):
        return item in container
    return False


def _show(v, limit=120) -> str:
    if v is MISSING:
        return "<absent>"
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


ASSERTION_KINDS = (
    "equals",
    "equals_string_or_number",
    "equals_string_or_bool",
    "equals_or_absent",
    "equals_if_body",
    "equals_if_present",
    "equals_recommended",
    "not_empty",
    "empty_or_absent",
    "absent",
    "absent_per_rfc",
    "contains",
    "not_contains",
    "contains_all",
    "contains_if_present",
    "is_number",
    "is_integer",
    "is_array_if",
)
NOT_REQUIRED = frozenset({"equals_recommended", "absent_per_rfc"})


def _condition_holds(cond, doc, status, value) -> tuple:
    """Evaluate an `is_array_if` condition. Returns (holds: bool, description)."""
    if cond is True or (isinstance(cond, str) and cond.strip().lower() in ("present", "exists", "if present", "true")):
        return value is not MISSING, "present"
    if isinstance(cond, dict):
        if "status" in cond and len(cond) == 1:
            want = cond["status"]
            want = want if isinstance(want, list) else [want]
            return status in want, "status in %s" % want
        if "path" in cond:
            sub = check_assertion(cond, doc, status, body_present=doc is not MISSING)
            return sub[0] == "pass", "condition %s" % _show(cond)
    if isinstance(cond, str):
        m = re.fullmatch(r"\s*status\s*(?:==|=|in)\s*\[?([\d,\s]+)\]?\s*", cond)
        if m:
            want = [int(x) for x in re.findall(r"\d+", m.group(1))]
            return status in want, "status in %s" % want
    # Free-text condition: the only thing checkable from the response is presence.
    return value is not MISSING, "present (condition %r)" % (cond,)


def check_assertion(a: dict, doc, status: int, body_present: bool) -> tuple:
    """Returns (outcome, message): outcome in pass | fail | warn | skip."""
    kinds = [k for k in a if k in ASSERTION_KINDS]
    path = a.get("path", "")
    if len(kinds) != 1:
        other = [k for k in a if k != "path"]
        return "fail", "%s: unknown assertion %s" % (path, other)
    kind = kinds[0]
    expected = a[kind]
    try:
        value, is_list = resolve(doc, path)
    except PathSyntaxError as e:
        return "fail", "%s: bad path: %s" % (path, e)
    present = value is not MISSING
    where = path or "$"

    def res(ok, msg):
        if ok:
            return "pass", ""
        return ("warn" if kind in NOT_REQUIRED else "fail"), "%s %s" % (where, msg)

    if kind in ("equals", "equals_recommended"):
        return res(present and strict_equal(value, expected),
                   "expected %s, got %s" % (_show(expected), _show(value)))
    if kind == "equals_string_or_number":
        return res(present and equals_string_or_number(value, expected),
                   "expected %s (string or number), got %s" % (_show(expected), _show(value)))
    if kind == "equals_string_or_bool":
        return res(present and equals_string_or_bool(value, expected),
                   "expected %s (string or bool), got %s" % (_show(expected), _show(value)))
    if kind == "equals_or_absent":
        return res(not present or strict_equal(value, expected),
                   "expected %s or absent, got %s" % (_show(expected), _show(value)))
    if kind == "equals_if_body":
        if not body_present:
            return "skip", ""
        return res(present and strict_equal(value, expected),
                   "expected %s (body present), got %s" % (_show(expected), _show(value)))
    if kind == "equals_if_present":
        if not present:
            return "skip", ""
        return res(strict_equal(value, expected),
                   "expected %s (when present), got %s" % (_show(expected), _show(value)))
    if kind == "not_empty":
        return res(is_not_empty(value), "expected non-empty, got %s" % _show(value))
    if kind == "empty_or_absent":
        return res(value is MISSING or value is None or value == "",
                   "expected empty or absent, got %s" % _show(value))
    if kind in ("absent", "absent_per_rfc"):
        return res(not present, "expected absent, got %s" % _show(value))
    if kind == "contains":
        return res(present and _contains(value, expected),
                   "expected to contain %s, got %s" % (_show(expected), _show(value)))
    if kind == "contains_if_present":
        if not present:
            return "skip", ""
        return res(_contains(value, expected),
                   "expected to contain %s, got %s" % (_show(expected), _show(value)))
    if kind == "not_contains":
        return res(not present or not _contains(value, expected),
                   "expected not to contain %s, got %s" % (_show(expected), _show(value)))
    if kind == "contains_all":
        want = expected if isinstance(expected, list) else [expected]
        missing = [w for w in want if not (present and _contains(value, w))]
        return res(not missing, "missing %s in %s" % (_show(missing), _show(value)))
    if kind == "is_number":
        ok = present and isinstance(value, (int, float)) and not isinstance(value, bool)
        return res(ok, "expected a JSON number, got %s" % _show(value))
    if kind == "is_integer":
        ok = present and not isinstance(value, bool) and (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        )
        return res(ok, "expected a JSON integer, got %s" % _show(value))
    if kind == "is_array_if":
        holds, desc = _condition_holds(expected, doc, status, value)
        if not holds:
            return "skip", ""
        return res(isinstance(value, list), "expected an array (%s), got %s" % (desc, _show(value)))
    return "fail", "%s: unhandled assertion %s" % (where, kind)


# ---------------------------------------------------------------------------
# HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # report 3xx as they are


_OPENER = urllib.request.build_opener(_NoRedirect)


def build_body(body, headers: dict):
    """Returns bytes or None; sets a JSON Content-Type when the step gives none."""
    if body is None:
        return None
    if isinstance(body, dict) and set(body.keys()) == {"__raw__"} and isinstance(body["__raw__"], str):
        data = body["__raw__"].encode("utf-8")
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = json.dumps(body).encode("utf-8")
    if not any(k.lower() == "content-type" for k in headers):
        # urllib would otherwise send application/x-www-form-urlencoded
        headers["Content-Type"] = "application/json"
    return data


def http(method: str, url: str, headers: dict, data, timeout: float):
    req = urllib.request.Request(url, data=data, method=method)
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        body = e.read() if e.fp is not None else b""
        return e.code, dict(e.headers or {}), body


# ---------------------------------------------------------------------------
# Runner


def run_step(step: dict, base: str, variables: dict, timeout: float, verbose: bool):
    """Returns (outcome, reasons): outcome pass | warn | fail."""
    fails, warns = [], []
    try:
        path = substitute(step.get("path", ""), variables)
        headers = substitute(step.get("headers") or {}, variables)
        body = substitute(step.get("body"), variables)
        expect = substitute(step.get("expect") or {}, variables)
    except UndefinedVariable as e:
        return "fail", ["undefined variable {{%s}} (an earlier capture failed)" % e.args[0]]
    headers = {k: v for k, v in headers.items()}
    data = build_body(body, headers)
    url = join_url(base, path)
    method = step.get("method", "GET").upper()
    try:
        status, resp_headers, raw = http(method, url, headers, data, timeout)
    except Exception as e:  # connection refused, timeout, ...
        return "fail", ["request error: %s: %s" % (type(e).__name__, e)]
    text = raw.decode("utf-8", errors="replace")
    body_present = bool(text.strip())
    doc = MISSING
    if body_present:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = MISSING

    if "status" in expect:
        want = expect["status"]
        want = want if isinstance(want, list) else [want]
        if status not in want:
            fails.append("status %d, expected %s" % (status, "/".join(str(w) for w in want)))
    for a in expect.get("json") or []:
        if doc is MISSING and body_present:
            outcome, msg = "fail", "%s: response is not JSON" % a.get("path", "")
            if any(k in NOT_REQUIRED for k in a):
                outcome = "warn"
        else:
            outcome, msg = check_assertion(a, doc, status, body_present)
        if outcome == "fail":
            fails.append(msg)
        elif outcome == "warn":
            warns.append(msg + " (not required)")
    for t in expect.get("body_text") or []:
        if "contains" in t and t["contains"] not in text:
            fails.append("body lacks %s" % _show(t["contains"]))
        if "not_contains" in t and t["not_contains"] in text:
            fails.append("body contains %s" % _show(t["not_contains"]))
    for var, cpath in (step.get("capture") or {}).items():
        try:
            v, _ = resolve(doc, cpath)
        except PathSyntaxError as e:
            v = MISSING
            fails.append("capture %s: %s" % (var, e))
            continue
        if v is MISSING or v is None:
            variables.pop(var, None)
            fails.append("capture %s: %s absent" % (var, cpath))
        else:
            variables[var] = v
    if fails:
        snippet = " ".join(text.split())
        if len(snippet) > 300:
            snippet = snippet[:297] + "..."
        fails.append("[%s %s -> %d %s]" % (method, url, status, snippet or "<no body>"))
        return "fail", fails + warns
    if warns:
        return "warn", warns
    return "pass", []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2")
    ap.add_argument("--token", required=True, help="bearer token ({{token}}; {{auth}} = 'Bearer TOKEN')")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print step notes on failure")
    ap.add_argument("file")
    args = ap.parse_args(argv)
    try:
        with open(args.file, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        print("cannot read %s: %s" % (args.file, e), file=sys.stderr)
        return 2
    steps = spec.get("steps") if isinstance(spec, dict) else None
    if not isinstance(steps, list):
        print("%s: no steps[]" % args.file, file=sys.stderr)
        return 2
    print("# %s: %d steps against %s" % (spec.get("vendor", args.file), len(steps), args.base))
    variables = {"token": args.token, "auth": "Bearer " + args.token}
    passed = failed = warned = 0
    for i, step in enumerate(steps):
        name = step.get("name") or "%s %s" % (step.get("method"), step.get("path"))
        outcome, reasons = run_step(step, args.base, variables, args.timeout, args.verbose)
        label = "%03d %s" % (i, name)
        if outcome == "pass":
            passed += 1
            print("PASS %s" % label)
        elif outcome == "warn":
            passed += 1
            warned += 1
            print("WARN %s: %s" % (label, "; ".join(reasons)))
        else:
            failed += 1
            extra = ""
            if args.verbose and step.get("notes"):
                extra = " (notes: %s)" % step["notes"]
            print("FAIL %s: %s%s" % (label, "; ".join(reasons), extra))
        sys.stdout.flush()
    if warned:
        print("# %d step(s) passed with warnings on non-required assertions" % warned)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
