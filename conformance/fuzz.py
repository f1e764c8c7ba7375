#!/usr/bin/env python3
"""Seeded adversarial HTTP fuzzer for dirsync's SCIM API (issue 13).

    conformance/fuzz.py --base http://127.0.0.1:PORT/scim/v2 --token TOKEN [--token TOKEN2]
                        [--seed N] [--requests N] [--work DIR]
    conformance/fuzz.py --dry-run --seed N --requests N     # print the requests, send nothing
    conformance/fuzz.py --base URL --token TOKEN --replay FILE.json   # resend one saved request

Sends --requests requests (default 5,000), one at a time, each drawn from one
random.Random(seed): valid traffic that creates, patches and lists users and
groups (so later requests reach existing resources), and hostile traffic:
mutated bodies (wrong types, nulls, huge and deeply nested values, invalid
UTF-8, NUL and other controls, confusable Unicode, lone surrogates), filters
from the RFC 7644 §3.4.2.2 grammar and near misses of it, PATCH operations
with random ops, paths and values, random query parameters (count,
startIndex, attributes, excludedAttributes, sortBy, sortOrder, cursor),
wrong content types, methods, ids and tokens, on /Users, /Groups, /Bulk,
/.search and the discovery endpoints. The sequence depends only on the seed
and the server's answers, so the same seed against a fresh server sends the
same requests.

A request fails the run when it gets:
  - any 5xx;
  - a connection reset, or no answer within --timeout seconds;
  - a 4xx whose body is not a SCIM error (RFC 7644 §3.12: JSON whose `schemas`
    holds urn:ietf:params:scim:api:messages:2.0:Error and whose `status` is the
    HTTP status as a string), except what ACTIX_OWN lists;
  - a 200/201 whose body is not JSON.
Every failing request is printed (method, path, headers with the token
redacted, body truncated) with the seed and its index, and saved whole under
--work (fuzz-failures/NNNN.json) for --replay. Exits 1 on any failure.
"""

import argparse
import base64
import gzip
import http.client
import json
import os
import random
import socket
import sys
import time
import urllib.parse
import uuid

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

# Answers the HTTP parser (actix-http) gives before the application runs, which
# therefore cannot carry a SCIM body: (why, predicate on request and answer).
# Keep this list short; everything the application answers must be a SCIM error.
ACTIX_OWN = [
    (
        "actix-http refuses a request head over its buffer limit (32 KiB here) "
        "with a bare 4xx before any handler runs",
        lambda req, status, body: req.head_size() > 32 * 1024
        and status in (400, 413, 414, 431)
        and not body,
    ),
    (
        "httparse (actix-http's request-line parser) refuses a request target holding "
        "a byte RFC 3986 does not allow there (\", <, >, DEL, non-ASCII) with a bare 400",
        lambda req, status, body: status == 400
        and not body
        and any(c in '"<>' or ord(c) >= 0x7F for c in req.path),
    ),
]

# One request in this many is a boundary case (Generator.boundary): 5,000 requests
# send each of them at least once.
BOUNDARY_EVERY = 500

# ---- strings a hostile or careless client sends -------------------------------------
CONFUSABLE = [
    "\uff21dmin",  # fullwidth A
    "a\u200bb",  # zero-width space
    "ab\u200d",  # zero-width joiner
    "\u202egnp.exe",  # right-to-left override
    "\u0430dmin",  # Cyrillic a
    "\u0391lice",  # Greek Alpha
    "e\u0301",  # combining acute
    "\u00e9",
    "\ufb03",  # ffi ligature
    "\u0130stanbul",  # dotted capital I
    "stra\u00dfe",
    "\u01c5",  # titlecase digraph
    "\ufeffbom",
    "\u2028line",
    "\U0001f600",
    "\u0000",
]
CONTROLS = ["\u0000", "a\u0000b", "\u0001", "\u001f", "\t\n\r", "\u007f", "\u0085", "\u001b[31m"]
SQLISH = ["' OR 1=1 --", "%", "_", "\\", '"', "%_\\", "'; DROP TABLE users; --", "$.a", "{}", "[]", "null", "*"]
DATES = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.123+02:00",
    "2015-10-10T14:38:21.8617979-07:00",
    "2024-13-45T99:99:99Z",
    "0000-00-00T00:00:00Z",
    "9999-12-31T23:59:59.999999999+14:00",
    "-infinity",
    "2024-02-30",
    "1e10",
    "",
]
NUMBERS = [0, -1, 1, 2**31, 2**63 - 1, 2**64, -(2**63), 10**30, 1.5, -0.0, 1e308, 4.9e-324]
# Lone surrogates are kept as Python strings and encoded with surrogatepass
# (invalid UTF-8) or as JSON \u escapes (which serde_json refuses).
SURROGATES = ["\ud800", "a\udfffb"]


class Request:
    """One HTTP request as sent (path includes the query string)."""

    def __init__(self, label, method, path, headers=None, body=None):
        self.label = label
        self.method = method
        self.path = path
        self.headers = list(headers or [])
        self.body = body

    def head_size(self):
        return len(self.method) + len(self.path) + 12 + sum(len(k) + len(v) + 4 for k, v in self.headers)

    def to_json(self):
        return {
            "label": self.label,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body_base64": None if self.body is None else base64.b64encode(self.body).decode(),
        }

    @classmethod
    def from_json(cls, obj):
        body = obj.get("body_base64")
        return cls(
            obj.get("label", "replay"),
            obj["method"],
            obj["path"],
            [tuple(h) for h in obj.get("headers", [])],
            None if body is None else base64.b64decode(body),
        )

    def describe(self, token_values=(), limit=1500):
        lines = ["  %s %s" % (self.method, truncate(self.path, limit))]
        for k, v in self.headers:
            for t in token_values:
                if t:
                    v = v.replace(t, "<token>")
            lines.append("  %s: %s" % (k, truncate(v, 200)))
        if self.body is not None:
            lines.append("  body (%d bytes): %s" % (len(self.body), truncate(repr(self.body), limit)))
        return "\n".join(lines)


def truncate(text, limit):
    """A prefix of `text` fit for a log line: control characters escaped."""
    text = "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "... (truncated)"


# ---- the schema, as the server's discovery endpoints describe it --------------------
class Attr:
    def __init__(self, urn, name, ty, multi, subs, mutability):
        self.urn = urn
        self.name = name
        self.ty = ty
        self.multi = multi
        self.subs = subs  # list of Attr
        self.mutability = mutability


# What the fuzzer assumes when it runs without a server (--dry-run, unit tests).
OFFLINE_SCHEMAS = {
    "User": [
        (USER_URN, "userName", "string", False, []),
        (USER_URN, "name", "complex", False, [("givenName", "string"), ("familyName", "string"), ("formatted", "string")]),
        (USER_URN, "displayName", "string", False, []),
        (USER_URN, "active", "boolean", False, []),
        (USER_URN, "title", "string", False, []),
        (USER_URN, "emails", "complex", True, [("value", "string"), ("type", "string"), ("primary", "boolean")]),
        (USER_URN, "phoneNumbers", "complex", True, [("value", "string"), ("type", "string")]),
        (USER_URN, "addresses", "complex", True, [("streetAddress", "string"), ("type", "string"), ("primary", "boolean")]),
        (USER_URN, "groups", "complex", True, [("value", "string"), ("display", "string")]),
        (USER_URN, "roles", "complex", True, [("value", "string"), ("primary", "boolean")]),
        (USER_URN, "x509Certificates", "complex", True, [("value", "binary")]),
        (ENTERPRISE_URN, "employeeNumber", "string", False, []),
        (ENTERPRISE_URN, "manager", "complex", False, [("value", "string"), ("displayName", "string")]),
    ],
    "Group": [
        (GROUP_URN, "displayName", "string", False, []),
        (GROUP_URN, "members", "complex", True, [("value", "string"), ("type", "string"), ("display", "string")]),
    ],
}
COMMON = [(None, "id", "string", False, []), (None, "externalId", "string", False, [])]
META = [("created", "dateTime"), ("lastModified", "dateTime"), ("resourceType", "string"), ("version", "string"), ("location", "reference")]


def offline_schema():
    out = {}
    for rt, attrs in OFFLINE_SCHEMAS.items():
        out[rt] = [
            Attr(urn, name, ty, multi, [Attr(urn, s, st, False, [], "readWrite") for s, st in subs], "readWrite")
            for urn, name, ty, multi, subs in attrs + COMMON
        ]
    return out


def schema_from_discovery(resource_types, schemas):
    """{"User": [Attr...], "Group": [...]} from /ResourceTypes and /Schemas."""
    by_urn = {s["id"]: s for s in schemas.get("Resources", [])}

    def attrs_of(urn):
        out = []
        for a in by_urn.get(urn, {}).get("attributes", []):
            subs = [
                Attr(urn, s["name"], s.get("type", "string"), False, [], s.get("mutability", "readWrite"))
                for s in a.get("subAttributes", []) or []
            ]
            out.append(Attr(urn, a["name"], a.get("type", "string"), bool(a.get("multiValued")), subs, a.get("mutability", "readWrite")))
        return out

    out = {}
    for rt in resource_types.get("Resources", []):
        attrs = attrs_of(rt["schema"])
        for ext in rt.get("schemaExtensions", []) or []:
            attrs += attrs_of(ext["schema"])
        attrs += [Attr(None, n, t, False, [], "readOnly") for _, n, t, _, _ in COMMON]
        out[rt["name"]] = attrs
    if not out.get("User") or not out.get("Group"):
        raise RuntimeError("discovery did not describe User and Group")
    return out


# ---- generation ---------------------------------------------------------------------
class Generator:
    """Draws requests from one seeded random.Random; `observe` feeds answers back
    so later requests can name resources that exist."""

    def __init__(self, seed, prefix, schema, tokens, avoid=()):
        self.rng = random.Random(seed)
        self.avoid = set(avoid)
        self.prefix = prefix.rstrip("/")
        self.schema = schema
        self.tokens = tokens
        self.users = []  # ids
        self.groups = []
        self.cursors = []
        self.etags = {}
        self.serial = 0

    # -- small choices --
    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p):
        return self.rng.random() < p

    def weighted(self, table):
        total = sum(w for w, _ in table)
        x = self.rng.random() * total
        for w, item in table:
            x -= w
            if x < 0:
                return item
        return table[-1][1]

    def unique(self, stem):
        self.serial += 1
        return "%s%d-%d" % (stem, self.serial, self.rng.randrange(10**6))

    def some_id(self, kind=None):
        pools = {"User": self.users, "Group": self.groups}
        pool = pools.get(kind) or (self.users + self.groups)
        r = self.rng.random()
        if pool and r < 0.7:
            return self.pick(pool)
        if r < 0.85:
            # A UUIDv7-shaped id that names nothing.
            bits = (self.rng.getrandbits(128) & ~(0xF << 76) | (0x7 << 76)) & ~(0x3 << 62) | (0x2 << 62)
            return str(uuid.UUID(int=bits))
        return self.pick(["not-a-uuid", "0", "010101001010101011001010101011", "%00", "..", "bulkId:b1", "a" * 300, "\u0000"])

    def string(self):
        r = self.rng.random()
        if r < 0.35:
            return self.pick(["alice", "Bob Smith", "x", "", " ", "o'hara", "user@example.com", "Ünïcödé", "日本語"])
        if r < 0.5:
            return self.pick(CONFUSABLE)
        if r < 0.62:
            return self.pick(CONTROLS)
        if r < 0.72:
            return self.pick(SQLISH)
        if r < 0.78:
            return self.pick(DATES)
        if r < 0.83:
            return self.pick(SURROGATES)
        if r < 0.9:
            return self.some_id()
        return self.huge_string()

    def huge_string(self):
        n = self.weighted([(40, 300), (30, 1025), (20, 8192), (8, 100_000), (2, 900_000)])
        return self.pick(["x", "\u00e9", "\U0001f600", "a\u0000"]) * (n // 2 if n > 1000 else n)

    def scalar(self):
        r = self.rng.random()
        if r < 0.15:
            return None
        if r < 0.3:
            return self.chance(0.5)
        if r < 0.45:
            return self.pick(NUMBERS)
        return self.string()

    def value(self, depth=0):
        r = self.rng.random()
        if depth > 3 or r < 0.6:
            return self.scalar()
        if r < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.key(): self.value(depth + 1) for _ in range(self.rng.randrange(4))}

    def key(self):
        attrs = self.schema[self.pick(["User", "Group"])]
        a = self.pick(attrs)
        r = self.rng.random()
        if r < 0.5:
            return a.name
        if r < 0.6:
            return a.name.upper()
        if r < 0.7 and a.urn:
            return "%s:%s" % (a.urn, a.name)
        if r < 0.8:
            return self.string() if self.chance(0.3) else "unknownAttr"
        if r < 0.9 and a.subs:
            return "%s.%s" % (a.name, self.pick(a.subs).name)
        return self.pick(["schemas", "id", "meta", "members", "groups", "Operations", "password", ""])

    def typed(self, attr):
        """A value of the attribute's type, most of the time."""
        if self.chance(0.2):
            return self.value()
        if attr.ty == "complex":
            element = {s.name: self.typed(s) for s in attr.subs if self.chance(0.6)}
            if attr.name in ("members", "groups", "manager") and self.chance(0.7):
                element["value"] = self.some_id("User" if attr.name != "groups" else "Group")
            return [element] if attr.multi else element
        if attr.ty == "boolean":
            return self.pick([True, False, True, "True", "false"])
        if attr.ty in ("integer", "decimal"):
            return self.pick(NUMBERS)
        if attr.ty == "dateTime":
            return self.pick(DATES)
        if attr.ty == "binary":
            return self.pick(["TUlJQ0lqQ0NBWXVnQXdJQkFnSUpB", "not base64!", ""])
        if attr.name == "value" and self.chance(0.3):
            return self.some_id()
        if self.chance(0.5):
            return self.pick(["Alice", "alice@example.com", "work", "+1 555 0100", "Engineering"])
        return self.string()

    # -- resources --
    def user(self):
        name = self.unique("fz-user")
        body = {
            "schemas": [USER_URN],
            "userName": name + "@example.com",
            "name": {"givenName": "Fuzz", "familyName": name},
            "displayName": "Fuzz " + name,
            "active": True,
            "emails": [{"value": name + "@example.com", "type": "work", "primary": True}],
        }
        if self.chance(0.5):
            body["schemas"].append(ENTERPRISE_URN)
            body[ENTERPRISE_URN] = {"employeeNumber": str(self.serial), "department": "R&D"}
            if self.users and self.chance(0.5):
                body[ENTERPRISE_URN]["manager"] = {"value": self.pick(self.users)}
        if self.chance(0.3):
            body["externalId"] = self.unique("ext")
        if self.chance(0.3):
            body["phoneNumbers"] = [{"value": "+1 555 0100", "type": "work"}]
        return body

    def group(self):
        body = {"schemas": [GROUP_URN], "displayName": self.unique("fz-group")}
        if self.users and self.chance(0.7):
            members = {self.pick(self.users) for _ in range(self.rng.randrange(1, 6))}
            body["members"] = [{"value": m} for m in sorted(members)]
        return body

    # -- mutation of a JSON document --
    def mutate(self, doc, rounds=None):
        """Mutate a JSON value in place of a copy; returns (value, splices) where
        splices maps placeholder strings to raw JSON text (deep nesting, NaN) put
        in after serialisation."""
        doc = json.loads(json.dumps(doc))
        splices = {}
        for _ in range(rounds or self.rng.randrange(1, 4)):
            slots = []

            def walk(node):
                if isinstance(node, dict):
                    for k in list(node):
                        slots.append((node, k))
                        walk(node[k])
                elif isinstance(node, list):
                    for i in range(len(node)):
                        slots.append((node, i))
                        walk(node[i])

            walk(doc)
            if not slots:
                break
            container, k = self.pick(slots)
            kind = self.rng.randrange(12)
            if kind == 0 and isinstance(container, dict):
                del container[k]
            elif kind == 1:
                container[k] = None
            elif kind == 2:
                container[k] = self.value()
            elif kind == 3:
                container[k] = [container[k]] if self.chance(0.5) else {"value": container[k]}
            elif kind == 4:
                container[k] = self.huge_string()
            elif kind == 5:
                marker = "@@splice%d@@" % len(splices)
                depth = self.weighted([(40, 50), (30, 127), (20, 129), (10, 5000)])
                opener, closer = self.pick([("[", "]"), ('{"a":', "}")])
                splices['"%s"' % marker] = opener * depth + "1" + closer * depth
                container[k] = marker
            elif kind == 6:
                container[k] = self.pick(CONFUSABLE + CONTROLS + SURROGATES)
            elif kind == 7:
                container[k] = self.pick(NUMBERS)
            elif kind == 8 and isinstance(container, dict):
                container[self.key()] = self.value()
            elif kind == 9:
                marker = "@@splice%d@@" % len(splices)
                splices['"%s"' % marker] = self.pick(["NaN", "Infinity", "-Infinity", "1e999", "0x10", "01", "undefined", "'s'", "tru"])
                container[k] = marker
            elif kind == 10 and isinstance(container, dict) and isinstance(k, str):
                # The same key twice (serde_json keeps the last; a client may mean the first).
                marker = "@@dup%d@@" % len(splices)
                splices['"%s": null' % marker] = "%s: %s" % (json.dumps(k), json.dumps(self.value()))
                container[marker] = None
            else:
                container[k] = self.typed(self.pick(self.schema[self.pick(["User", "Group"])]))
        return doc, splices

    def encode(self, doc, splices=None):
        ascii_only = self.chance(0.5)
        text = json.dumps(doc, ensure_ascii=ascii_only)
        for marker, raw in (splices or {}).items():
            text = text.replace(marker, raw)
        data = text.encode("utf-8", "surrogatepass")
        return data

    def raw_mutate(self, data):
        """Byte-level damage: invalid UTF-8, truncation, a BOM, trailing garbage."""
        kind = self.rng.randrange(8)
        if not data:
            return b"\xff"
        at = self.rng.randrange(len(data))
        if kind == 0:
            return data[:at] + self.pick([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xc0\xaf"]) + data[at:]
        if kind == 1:
            return data[:at]
        if kind == 2:
            return b"\xef\xbb\xbf" + data
        if kind == 3:
            return data + self.pick([b" garbage", b"}", b"\x00", b"\n{}"])
        if kind == 4:
            return data[:at] + b"\x00" + data[at:]
        if kind == 5:
            return data.decode("utf-8", "replace").encode("utf-16")
        if kind == 6:
            return self.pick([b"", b"   ", b"null", b"[]", b"1", b'"s"', b"{", b"<xml/>", b"a=b&c=d"])
        return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randrange(1, 64)))

    # -- filters (RFC 7644 §3.4.2.2) --
    def attr_path(self, rt, for_filter=True):
        attrs = self.schema[rt]
        r = self.rng.random()
        if r < 0.06:
            return self.pick(["meta.created", "meta.lastModified", "meta.resourceType", "meta.version", "meta.location"])
        if r < 0.1:
            return self.pick(["unknownAttr", "name.unknown", "emails.value.extra", "a.b.c", "urn:x:y:z", "1abc", "user_name", "$ref", "emails.$ref"])
        if r < 0.14:
            return self.pick(["members", "members.value", "groups", "groups.value", "members.display", "groups.display"])
        a = self.pick(attrs)
        name = a.name
        if a.subs and self.chance(0.6):
            name = "%s.%s" % (name, self.pick(a.subs).name)
        if a.urn and self.chance(0.15):
            name = "%s:%s" % (a.urn, name)
        elif a.urn == ENTERPRISE_URN and self.chance(0.7):
            name = "%s:%s" % (a.urn, name)
        if self.chance(0.05):
            name = name.upper()
        return name

    def comp_value(self):
        r = self.rng.random()
        if r < 0.5:
            s = self.pick(["alice", "fz-user", "example.com", "work", "Fuzz", "fz-group"]) if self.chance(0.6) else self.string()
            if len(s) > 4096:
                s = s[:4096]
            return json.dumps(s, ensure_ascii=self.chance(0.5))
        if r < 0.6:
            return self.pick(["true", "false", "null"])
        if r < 0.7:
            return self.pick(["0", "-1", "1.5", "1e308", "1e999", "-0", "9223372036854775808", "0x1F"])
        if r < 0.8:
            return json.dumps(self.pick(DATES))
        if r < 0.9 and (self.users or self.groups):
            return json.dumps(self.some_id())
        return self.pick(["alice", "2015-10-10T14:38:21.8617979-07:00", '"unterminated', "'single'", '"a\\u0000b"', '"\\ud800"', '"\\x41"', '"\\"', ""])

    def attr_exp(self, rt):
        path = self.attr_path(rt)
        if self.chance(0.12):
            return "%s %s" % (path, self.pick(["pr", "PR", "Pr"]))
        op = self.pick(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
        if self.chance(0.1):
            op = op.upper() if self.chance(0.5) else op.capitalize()
        return "%s %s %s" % (path, op, self.comp_value())

    def val_filter(self, rt, depth):
        return self.filter(rt, depth + 1, in_brackets=True)

    def filter(self, rt, depth=0, in_brackets=False):
        r = self.rng.random()
        if depth > 4 or r < 0.4:
            return self.attr_exp(rt)
        if r < 0.6:
            word = self.pick(["and", "or", "AND", "Or"])
            return "%s %s %s" % (self.filter(rt, depth + 1, in_brackets), word, self.filter(rt, depth + 1, in_brackets))
        if r < 0.7:
            return "not (%s)" % self.filter(rt, depth + 1, in_brackets)
        if r < 0.8:
            return "(%s)" % self.filter(rt, depth + 1, in_brackets)
        if in_brackets:
            return self.attr_exp(rt)
        multi = [a for a in self.schema[rt] if a.ty == "complex"] or self.schema[rt]
        a = self.pick(multi)
        prefix = a.name if not a.urn or a.urn != ENTERPRISE_URN else "%s:%s" % (a.urn, a.name)
        inner = self.filter(rt, depth + 1, in_brackets=True) if self.chance(0.5) else "value eq %s" % self.comp_value()
        text = "%s[%s]" % (prefix, inner)
        if self.chance(0.2) and a.subs:
            # Entra's E8 form: a sub-attribute after the value filter.
            text += ".%s eq %s" % (self.pick(a.subs).name, self.comp_value())
        return text

    def long_filter(self, rt):
        """Chains and nesting around the documented limits (1,024 terms, 64 levels)."""
        kind = self.rng.randrange(3)
        if kind == 0:
            n = self.pick([100, 500, 998, 1000, 1024, 1025, 2000])
            word = self.pick(["or", "and"])
            attr = self.pick(["userName", "displayName", "externalId", "emails.value", "name.givenName"] if rt == "User" else ["displayName", "externalId"])
            return (" %s " % word).join('%s eq "v%d"' % (attr, i) for i in range(n))
        if kind == 1:
            n = self.pick([10, 63, 64, 65, 200, 2000])
            return "(" * n + 'userName eq "x"' + ")" * n
        n = self.pick([32, 64, 65, 500])
        return "not (" * n + 'externalId pr' + ")" * n

    def near_miss(self, text):
        if not text:
            return "("
        kind = self.rng.randrange(10)
        at = self.rng.randrange(len(text))
        if kind == 0:
            return text[:at] + text[at + 1 :]
        if kind == 1:
            return text[:at] + self.pick(["(", ")", "[", "]", '"', " ", "and", " or ", "\\", ".", ":", "\u0000", "\x7f"]) + text[at:]
        if kind == 2:
            return text[:at]
        if kind == 3:
            return text.replace('"', "", 1)
        if kind == 4:
            return text.replace(" eq ", self.pick([" == ", " eqq ", " ", " eq eq ", " regex "]), 1)
        if kind == 5:
            return text + self.pick([" and", " or", ")", "]", " extra", " pr", '"'])
        if kind == 6:
            return "not " + text
        if kind == 7:
            return text.replace(" ", self.pick(["  ", "\t", "\n", ""]), 1)
        if kind == 8:
            return text.replace("[", "", 1)
        return self.pick(["", " ", "()", "[]", "pr", "eq", "userName", 'userName eq', 'eq "x"', "not", "not()", "and", "userName eq \"x\" and", "(userName eq \"x\""])

    def any_filter(self, rt):
        r = self.rng.random()
        if r < 0.04:
            long = self.long_filter(rt)
            if "long-filters" not in self.avoid:
                return long
        text = self.filter(rt)
        if r < 0.35:
            text = self.near_miss(text)
        return text

    # -- query strings --
    def query(self, rt, listing):
        params = []
        if listing and self.chance(0.7):
            params.append(("filter", self.any_filter(rt)))
        for name, values in [
            ("count", ["0", "1", "2", "10", "100", "1000", "1001", "-1", "abc", "1.5", "", "99999999999999999999", " 5", "0x10"]),
            ("startIndex", ["1", "0", "-5", "2", "1000000", "abc", "", "18446744073709551616", "1e3"]),
            ("sortOrder", ["ascending", "descending", "DESCENDING", "up", ""]),
        ]:
            if listing and self.chance(0.3):
                params.append((name, self.pick(values)))
        if listing and self.chance(0.25):
            params.append(("sortBy", self.attr_path(rt) if self.chance(0.8) else self.string()[:200]))
        if listing and self.chance(0.15):
            cursor = self.pick(self.cursors) if self.cursors and self.chance(0.5) else self.pick(["", "abc", "AAAA", "eyJ9", "!!", "\u0000", "x" * 2000, base64.b64encode(json.dumps({"id": self.some_id()}).encode()).decode()])
            params.append(("cursor", cursor))
        for name in ("attributes", "excludedAttributes"):
            if self.chance(0.25):
                n = self.rng.randrange(1, 4)
                params.append((name, ",".join(self.attr_path(rt) for _ in range(n)) if self.chance(0.85) else self.string()[:300]))
        if self.chance(0.05):
            params.append((self.pick(["Filter", "COUNT", "unknown", "", "a[b]", "filter"]), self.string()[:200]))
        if self.chance(0.05) and params:
            params.append(self.pick(params))  # a parameter twice
        return self.encode_query(params)

    def encode_query(self, params):
        if not params:
            return ""
        r = self.rng.random()
        parts = []
        for k, v in params:
            if isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
                v = v.encode("utf-8", "surrogatepass")
            if r < 0.6:
                parts.append("%s=%s" % (urllib.parse.quote(k, safe=""), urllib.parse.quote(v, safe="")))
            elif r < 0.85:
                parts.append("%s=%s" % (urllib.parse.quote_plus(k), urllib.parse.quote_plus(v)))
            else:
                # Leave what an HTTP client may send raw ( [ ] " ( ) : , ) unencoded.
                parts.append("%s=%s" % (urllib.parse.quote(k, safe=""), urllib.parse.quote(v, safe='[]"():,@!$\'*')))
        query = "&".join(parts)
        if self.chance(0.03):
            query += self.pick(["&", "&&", "&=", "&filter", "%", "%zz", "%ff%fe", "%00", "%C0%AF"])
        return "?" + query

    # -- headers --
    def headers(self, body_kind="json"):
        h = []
        r = self.rng.random()
        if r < 0.93:
            token = self.tokens[-1] if len(self.tokens) > 1 and r < 0.15 else self.tokens[0]
            h.append(("Authorization", "Bearer " + token))
        elif r < 0.95:
            pass
        else:
            h.append(("Authorization", self.pick(["Bearer wrong", "Bearer ", "Basic dXNlcjpwYXNz", "bearer " + self.tokens[0], "Bearer " + self.tokens[0] + "x", "Bearer " + "a" * 5000, "Token x"])))
        if body_kind:
            r = self.rng.random()
            if r < 0.55:
                h.append(("Content-Type", "application/scim+json"))
            elif r < 0.8:
                h.append(("Content-Type", "application/json"))
            elif r < 0.85:
                pass
            else:
                h.append(("Content-Type", self.pick([
                    "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                    "application/scim+json; charset=latin1", "application/json;charset=utf-16", "APPLICATION/SCIM+JSON",
                    "application/scim+jsonx", "application", "*/*", "", "application/json, text/plain", "application/scim+json;;;",
                ])))
        if self.chance(0.1):
            h.append(("Accept", self.pick(["application/json", "application/scim+json", "text/html", "*/*", "application/xml", "", "application/json;q=0"])))
        if self.chance(0.05):
            h.append(("User-Agent", self.pick(["OneLogin SCIM", "Okta SCIM Client 1.0.0", "Azure AD SCIM Client", "\u00e9".encode("latin-1").decode("latin-1")])))
        return h

    def if_headers(self, rid):
        h = []
        if self.chance(0.1):
            tag = self.etags.get(rid) if self.chance(0.5) else None
            h.append((self.pick(["If-Match", "If-None-Match"]), tag or self.pick(["*", 'W/"1"', '"1"', "garbage", 'W/""', ", ,"])))
        return h

    # -- requests --
    def boundary(self, k):
        """The documented limits and the known ways past them, at fixed places in
        every run (they draw nothing from the seed): a 1,024-term filter must run
        on both backends, one more term or level is 400, NUL is 400 everywhere."""
        auth = [("Authorization", "Bearer " + self.tokens[0])]
        json_auth = auth + [("Content-Type", "application/scim+json")]
        chain = lambda word, attr, n: (" %s " % word).join('%s eq "b%d"' % (attr, i) for i in range(n))
        listing = lambda coll, f: self.mk("boundary", "GET", coll + "?filter=" + urllib.parse.quote(f, safe=""), auth)
        member = self.users[0] if self.users else "0190f5d2-0000-7000-8000-000000000001"
        cases = [
            lambda: listing("/Users", chain("or", "userName", 1024)),
            lambda: listing("/Users", chain("and", "externalId", 1024)),
            lambda: listing("/Groups", chain("or", "displayName", 1024)),
            lambda: listing("/Users", chain("or", "userName", 1025)),
            lambda: listing("/Users", "(" * 63 + 'userName eq "x"' + ")" * 63),
            lambda: listing("/Users", "(" * 65 + 'userName eq "x"' + ")" * 65),
            lambda: listing("/Users", r'userName eq "a\u0000b"'),
            lambda: self.mk("boundary", "POST", "/Groups", json_auth, self.encode(
                {"schemas": [GROUP_URN], "displayName": "fz-nul-%d" % k, "members": [{"value": member, "display": "a\u0000b"}]})),
            lambda: self.mk("boundary", "POST", "/Users/.search", json_auth, self.encode(
                {"schemas": [SEARCH_URN], "filter": chain("or", "emails.value", 1024)})),
        ]
        long_cases = {0, 1, 2, 3, 8}
        if k % len(cases) in long_cases and "long-filters" in self.avoid:
            return None
        return cases[k % len(cases)]()

    def request(self, index=None):
        """The next request; every BOUNDARY_EVERY-th is one of the boundary cases."""
        if index is not None and index % BOUNDARY_EVERY == BOUNDARY_EVERY // 2:
            req = self.boundary(index // BOUNDARY_EVERY)
            if req is not None:
                return req
        rt = self.pick(["User", "Group"])
        coll = "/Users" if rt == "User" else "/Groups"
        kind = self.weighted([
            (8, "create-valid"),
            (3, "create-group-valid"),
            (5, "patch-valid"),
            (12, "create-mutated"),
            (6, "replace"),
            (16, "patch"),
            (16, "list"),
            (8, "search"),
            (5, "bulk"),
            (4, "discovery"),
            (5, "by-id"),
            (5, "odd-request"),
            (4, "raw-body"),
        ])
        return getattr(self, "r_" + kind.replace("-", "_"))(rt, coll)

    def mk(self, label, method, path, headers, body=None):
        return Request(label, method, self.prefix + path, headers, body)

    def r_create_valid(self, rt, coll):
        return self.mk("create-valid", "POST", "/Users", self.headers()[:1] + [("Content-Type", "application/scim+json")], self.encode(self.user()))

    def r_create_group_valid(self, rt, coll):
        return self.mk("create-group-valid", "POST", "/Groups", self.headers()[:1] + [("Content-Type", "application/scim+json")], self.encode(self.group()))

    def r_patch_valid(self, rt, coll):
        if rt == "Group" and self.groups and self.users:
            gid = self.pick(self.groups)
            op = self.pick([
                {"op": "add", "path": "members", "value": [{"value": self.pick(self.users)}]},
                {"op": "remove", "path": 'members[value eq "%s"]' % self.pick(self.users)},
                {"op": "replace", "path": "displayName", "value": self.unique("fz-group")},
            ])
            body = {"schemas": [PATCH_URN], "Operations": [op]}
            return self.mk("patch-valid", "PATCH", "/Groups/" + gid, [("Authorization", "Bearer " + self.tokens[0]), ("Content-Type", "application/scim+json")], self.encode(body))
        if self.users:
            uid = self.pick(self.users)
            op = self.pick([
                {"op": "replace", "path": "active", "value": self.chance(0.5)},
                {"op": "replace", "value": {"displayName": "Fuzz " + self.unique("d"), "name.givenName": "F"}},
                {"op": "add", "path": 'emails[type eq "home"].value', "value": self.unique("h") + "@example.org"},
                {"op": "replace", "path": "%s:employeeNumber" % ENTERPRISE_URN, "value": "42"},
                {"op": "remove", "path": "phoneNumbers"},
            ])
            body = {"schemas": [PATCH_URN], "Operations": [op]}
            return self.mk("patch-valid", "PATCH", "/Users/" + uid, [("Authorization", "Bearer " + self.tokens[0]), ("Content-Type", "application/scim+json")], self.encode(body))
        return self.r_create_valid(rt, coll)

    def body_for(self, rt):
        doc = self.user() if rt == "User" else self.group()
        doc, splices = self.mutate(doc)
        data = self.encode(doc, splices)
        if self.chance(0.08):
            data = self.raw_mutate(data)
        return data

    def r_create_mutated(self, rt, coll):
        return self.mk("create-mutated", "POST", coll + self.query(rt, False), self.headers(), self.body_for(rt))

    def r_replace(self, rt, coll):
        rid = self.some_id(rt)
        return self.mk("replace", "PUT", "%s/%s%s" % (coll, urllib.parse.quote(rid, safe=""), self.query(rt, False)), self.headers() + self.if_headers(rid), self.body_for(rt))

    def patch_path(self, rt):
        r = self.rng.random()
        if r < 0.45:
            return self.attr_path(rt)
        if r < 0.7:
            multi = [a for a in self.schema[rt] if a.multi] or self.schema[rt]
            a = self.pick(multi)
            inner = self.filter(rt, 2, in_brackets=True) if self.chance(0.5) else "value eq %s" % json.dumps(self.some_id())
            text = "%s[%s]" % (a.name, inner)
            if a.subs and self.chance(0.4):
                text += "." + self.pick(a.subs).name
            return text
        if r < 0.8:
            # E28 and L2: URN spellings, with a dot before the attribute.
            a = self.pick(self.schema[rt])
            urn = a.urn or USER_URN
            return self.pick([
                "%s.%s" % (urn, a.name), "%s:%s" % (urn, a.name), urn, urn + ":", urn.upper() + ":" + a.name,
                ENTERPRISE_URN + ":manager.value", ENTERPRISE_URN + ".manager",
            ])
        if r < 0.9:
            return self.near_miss(self.attr_path(rt))
        return self.pick(["", " ", "[", "]", "..", "a.b.c.d", "members[", "members[value eq]", "emails[type eq \"work\"]..value", "x" * 3000, "\u0000", "meta.version", "id", "schemas", "members.value", "groups"])

    def patch_op(self, rt):
        op = {}
        r = self.rng.random()
        op["op"] = self.pick(["add", "replace", "remove"]) if r < 0.8 else self.pick(["Add", "REPLACE", "Remove", "move", "copy", "test", "", None, 7, ["add"]])
        if self.chance(0.75):
            op["path"] = self.patch_path(rt)
        if op.get("op") not in ("remove", "Remove") or self.chance(0.3):
            if "path" in op and isinstance(op["path"], str):
                attrs = [a for a in self.schema[rt] if op["path"].split("[")[0].split(".")[0].split(":")[-1] == a.name]
                op["value"] = self.typed(attrs[0]) if attrs and self.chance(0.7) else self.value()
            else:
                op["value"] = {self.key(): self.value() for _ in range(self.rng.randrange(1, 4))} if self.chance(0.8) else self.value()
        return op

    def r_patch(self, rt, coll):
        rid = self.some_id(rt)
        n = self.weighted([(70, 1), (20, 3), (9, 10), (1, 200)])
        body = {"schemas": [PATCH_URN], "Operations": [self.patch_op(rt) for _ in range(n)]}
        r = self.rng.random()
        splices = {}
        if r < 0.2:
            body, splices = self.mutate(body)
        elif r < 0.25 and rt == "Group":
            # L9: OneLogin's SCIM 1.1 group PATCH, no Operations.
            body = {"schemas": ["urn:scim:schemas:core:1.0"], "members": [{"value": self.some_id("User"), "operation": self.pick(["delete", "add", "", None, "DELETE"])} for _ in range(self.rng.randrange(0, 4))]}
            if self.chance(0.3):
                body["displayName"] = self.string()
        elif r < 0.28:
            body = {"schemas": [PATCH_URN], self.pick(["operations", "OPERATIONS", "Ops"]): body["Operations"]}
        data = self.encode(body, splices)
        if self.chance(0.04):
            data = self.raw_mutate(data)
        return self.mk("patch", "PATCH", "%s/%s" % (coll, urllib.parse.quote(rid, safe="")), self.headers() + self.if_headers(rid), data)

    def r_list(self, rt, coll):
        return self.mk("list", "GET", coll + self.query(rt, True), self.headers(None))

    def r_search(self, rt, coll):
        body = {"schemas": [SEARCH_URN]}
        if self.chance(0.8):
            body["filter"] = self.any_filter(rt)
        for name, gen in [
            ("startIndex", lambda: self.pick([1, 0, -1, 2, 10**20, "1", None, 1.5])),
            ("count", lambda: self.pick([0, 1, 10, 1000, 1001, -1, "5", None, 2**64])),
            ("sortBy", lambda: self.attr_path(rt)),
            ("sortOrder", lambda: self.pick(["ascending", "descending", "sideways", 1])),
            ("attributes", lambda: [self.attr_path(rt) for _ in range(self.rng.randrange(3))] if self.chance(0.8) else self.attr_path(rt)),
            ("excludedAttributes", lambda: [self.attr_path(rt) for _ in range(self.rng.randrange(3))]),
            ("cursor", lambda: self.pick(self.cursors) if self.cursors else "abc"),
        ]:
            if self.chance(0.25):
                body[name] = gen()
        splices = {}
        if self.chance(0.25):
            body, splices = self.mutate(body)
        path = self.pick([coll + "/.search", "/.search"]) if self.chance(0.9) else coll + "/.search" + self.query(rt, True)
        return self.mk("search", "POST", path, self.headers(), self.encode(body, splices))

    def bulk_op(self, i):
        method = self.pick(["POST", "PUT", "PATCH", "DELETE"]) if self.chance(0.9) else self.pick(["GET", "post", "", None, "HEAD"])
        rt = self.pick(["User", "Group"])
        coll = "/Users" if rt == "User" else "/Groups"
        op = {"method": method}
        if method == "POST" or self.chance(0.2):
            op["bulkId"] = "b%d" % self.rng.randrange(max(1, i + 2))
        if method in ("POST",) or self.chance(0.1):
            op["path"] = coll
        else:
            ref = self.pick(["bulkId:b%d" % self.rng.randrange(i + 2), self.some_id(rt), "junk"])
            op["path"] = "%s/%s" % (coll, ref) if self.chance(0.9) else self.pick(["", "/", "/Users/a/b", "Users", "/Me", "/Bulk"])
        if method in ("POST", "PUT"):
            data = self.user() if rt == "User" else self.group()
            if rt == "Group" and self.chance(0.5):
                data["members"] = [{"value": "bulkId:b%d" % self.rng.randrange(i + 2)}]
            op["data"] = data
        elif method == "PATCH":
            op["data"] = {"schemas": [PATCH_URN], "Operations": [self.patch_op(rt)]}
        if self.chance(0.1):
            op["version"] = self.pick(['W/"1"', "x", 1])
        return op

    def r_bulk(self, rt, coll):
        n = self.weighted([(60, 1), (25, 4), (12, 20), (2, 1001), (1, 0)])
        if n > 1000:
            ops = [{"method": "DELETE", "path": "/Users/%s" % self.some_id("User")} for _ in range(n)]
        else:
            ops = [self.bulk_op(i) for i in range(n)]
        body = {"schemas": [BULK_URN], "Operations": ops}
        if self.chance(0.4):
            body["failOnErrors"] = self.pick([1, 0, -1, 2, "1", None, 1.5, 10**20])
        splices = {}
        if self.chance(0.3) and n < 1000:
            body, splices = self.mutate(body)
        return self.mk("bulk", "POST", "/Bulk", self.headers(), self.encode(body, splices))

    def r_discovery(self, rt, coll):
        path = self.pick([
            "/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/ResourceTypes/Group", "/ResourceTypes/Nope",
            "/Schemas", "/Schemas/" + USER_URN, "/Schemas/" + ENTERPRISE_URN, "/Schemas/" + GROUP_URN, "/Schemas/urn:nope",
            "/Schemas/%00", "/ResourceTypes/%ff", "/ServiceProviderConfigs",
        ])
        method = "GET" if self.chance(0.8) else self.pick(["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
        body = self.encode({"schemas": [USER_URN]}) if method in ("POST", "PUT", "PATCH") else None
        return self.mk("discovery", method, path + self.query(rt, self.chance(0.5)), self.headers("json" if body else None), body)

    def r_by_id(self, rt, coll):
        rid = self.some_id(rt)
        method = self.pick(["GET", "GET", "GET", "DELETE"])
        path = "%s/%s%s" % (coll, urllib.parse.quote(rid, safe=""), self.query(rt, False))
        return self.mk("by-id", method, path, self.headers(None) + self.if_headers(rid))

    def r_odd_request(self, rt, coll):
        r = self.rng.random()
        if r < 0.3:
            method = self.pick(["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO", "HEAD", "CONNECT"])
            path = self.pick([coll, coll + "/.search", "/Bulk", "/.search", "/", ""])
            return self.mk("odd-method", method, path, self.headers(), self.encode({}))
        if r < 0.55:
            path = self.pick([
                "/users", "/Users/", "//Users", "/Users/%2e%2e/Groups", "/Users/a/b", "/Me", "/scim/v2/Users", "/Users;x=1",
                "/Users/%ff%fe", "/Users/%00", "/Users/.search/x", "/Groups/%u0041", "/%", "/Users/" + "a" * 2000, "/Bulk/x",
            ])
            return self.mk("odd-path", self.pick(["GET", "POST"]), path, self.headers())
        if r < 0.75:
            # The body in a form the server must decompress or refuse.
            data = self.encode(self.user() if rt == "User" else self.group())
            enc = self.pick(["gzip", "gzip", "br", "deflate", "zstd", "x-unknown"])
            payload = gzip.compress(data, mtime=0) if enc == "gzip" and self.chance(0.5) else self.raw_mutate(data)
            return self.mk("content-encoding", "POST", coll, self.headers() + [("Content-Encoding", enc)], payload)
        if r < 0.9:
            # A head near actix's limits.
            size = self.pick([8 * 1024, 30 * 1024, 40 * 1024, 70 * 1024])
            if self.chance(0.5):
                return self.mk("big-head", "GET", coll + "?filter=" + urllib.parse.quote('userName eq "%s"' % ("x" * size)), self.headers(None))
            return self.mk("big-head", "GET", coll, self.headers(None) + [("X-Fuzz", "x" * size)])
        return self.mk("big-body", "POST", coll, self.headers(), b'{"userName":"' + b"x" * self.pick([1_048_576, 2_000_000]) + b'"}')

    def r_raw_body(self, rt, coll):
        target = self.pick([coll, coll + "/.search", "/Bulk", "/.search", "%s/%s" % (coll, urllib.parse.quote(self.some_id(rt), safe=""))])
        method = "PATCH" if target.count("/") > 1 and not target.endswith("search") else ("PUT" if self.chance(0.2) and target.count("/") > 1 else "POST")
        base = self.encode(self.user() if rt == "User" else self.group())
        return self.mk("raw-body", method, target, self.headers(), self.raw_mutate(base))

    # -- answers --
    def observe(self, req, status, headers, body):
        """Remember ids, ETags and cursors from answers, so later requests find them."""
        if status == 204 and req.method == "DELETE":
            rid = urllib.parse.unquote(req.path.rsplit("/", 1)[-1].split("?")[0])
            for pool in (self.users, self.groups):
                if rid in pool:
                    pool.remove(rid)
            return
        if status not in (200, 201) or not body:
            return
        try:
            doc = json.loads(body)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        resources = [doc]
        if isinstance(doc.get("Resources"), list):
            resources = doc["Resources"]
            if isinstance(doc.get("nextCursor"), str) and len(self.cursors) < 50:
                self.cursors.append(doc["nextCursor"])
        for res in resources:
            if not isinstance(res, dict) or not isinstance(res.get("id"), str):
                continue
            schemas = res.get("schemas") or []
            pool = self.groups if GROUP_URN in schemas else self.users if USER_URN in schemas else None
            if pool is None:
                continue
            if status == 201 and res["id"] not in pool and len(pool) < 400:
                pool.append(res["id"])
            version = (res.get("meta") or {}).get("version")
            if isinstance(version, str):
                self.etags[res["id"]] = version


# ---- checking ----------------------------------------------------------------------
def problem(req, status, body):
    """Why this answer fails the run, or None."""
    if status >= 500:
        return "%d server error" % status
    if req.method == "HEAD":
        return None  # HEAD answers carry no body (RFC 9110 §9.3.2)
    if 400 <= status < 500:
        for why, allowed in ACTIX_OWN:
            if allowed(req, status, body):
                return None
        try:
            doc = json.loads(body)
        except ValueError:
            return "%d without a SCIM error body (not JSON)" % status
        if not isinstance(doc, dict) or ERROR_URN not in (doc.get("schemas") or []):
            return "%d without a SCIM error body (no %s in schemas)" % (status, ERROR_URN)
        if doc.get("status") != str(status):
            return "%d whose SCIM error body has status %r" % (status, doc.get("status"))
        return None
    if status in (200, 201):
        try:
            json.loads(body)
        except ValueError:
            return "%d whose body is not JSON" % status
    return None


class Client:
    """One keep-alive connection, reopened when the server closes it after an answer."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def send(self, req):
        """(status, headers, body) or raises OSError/http.client.HTTPException for a
        reset or timeout on a fresh connection."""
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                return self._send(req)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                self.close()
                if fresh or attempt == 1:
                    raise
                # The server may close an idle keep-alive connection between requests:
                # that is not this request's fault; send it again on a new connection.
                continue
            except Exception:
                self.close()
                raise

    def _send(self, req):
        conn = self.conn
        conn.putrequest(req.method, req.path, skip_host=False, skip_accept_encoding=True)
        for k, v in req.headers:
            conn.putheader(k, v.encode("latin-1", "replace"))
        if req.body is not None:
            conn.putheader("Content-Length", str(len(req.body)))
        sent_error = None
        try:
            conn.endheaders(req.body)
        except (BrokenPipeError, ConnectionResetError) as err:
            # The server may answer (413) and close before reading a large body.
            sent_error = err
        try:
            resp = conn.getresponse()
        except Exception:
            if sent_error:
                raise sent_error
            raise
        body = resp.read()
        headers = resp.getheaders()
        if resp.will_close or sent_error:
            self.close()
        return resp.status, headers, body


def discover(client, prefix):
    answers = []
    for path in ("/ResourceTypes", "/Schemas"):
        status, _, body = client.send(Request("discovery", "GET", prefix + path))
        if status != 200:
            raise RuntimeError("GET %s answered %d" % (path, status))
        answers.append(json.loads(body))
    return schema_from_discovery(*answers)


def run(args):
    url = urllib.parse.urlsplit(args.base)
    prefix = url.path.rstrip("/")
    tokens = args.token or ["no-token"]
    client = Client(url.hostname, url.port or 80, args.timeout) if not args.dry_run else None
    work = args.work or os.getcwd()

    if args.replay:
        with open(args.replay) as f:
            req = Request.from_json(json.load(f))
        status, headers, body = client.send(req)
        print("fuzz: replay %s\n%s\n  answer: %d %s" % (args.replay, req.describe(tokens), status, truncate(repr(body), 2000)))
        why = problem(req, status, body)
        print("fuzz: %s" % (why or "no problem"))
        return 1 if why else 0

    schema = offline_schema() if args.dry_run else discover(client, prefix)
    gen = Generator(args.seed, prefix, schema, tokens, args.avoid)
    print("fuzz: seed %d, %d requests to %s" % (args.seed, args.requests, args.base if not args.dry_run else "(dry run)"), flush=True)
    failures = []
    seen = {}
    statuses = {}
    slow = []
    started = time.monotonic()
    sent = 0
    for index in range(args.requests):
        req = gen.request(index)
        if args.dry_run:
            print("#%d %s %s %s" % (index, req.label, req.method, truncate(req.path, 300)))
            if req.body is not None:
                print("   %s" % truncate(repr(req.body), 300))
            continue
        t0 = time.monotonic()
        try:
            status, headers, body = client.send(req)
            why = problem(req, status, body)
        except socket.timeout:
            status, headers, body = 0, [], b""
            why = "no answer within %g s" % args.timeout
        except (OSError, http.client.HTTPException) as err:
            status, headers, body = 0, [], b""
            why = "connection failed: %s: %s" % (type(err).__name__, truncate(str(err), 200))
        elapsed = time.monotonic() - t0
        sent += 1
        statuses[status] = statuses.get(status, 0) + 1
        if elapsed > args.slow:
            slow.append((elapsed, index, req))
        if why is None:
            gen.observe(req, status, headers, body)
            continue
        failures.append(index)
        signature = (req.label, req.method, why.split(" (")[0], status)
        seen[signature] = seen.get(signature, 0) + 1
        saved = save(work, len(failures), req)
        if seen[signature] <= args.show:
            print("\nfuzz: FAIL request #%d (seed %d, %s): %s" % (index, args.seed, req.label, why))
            print(req.describe(tokens))
            print("  answer: %d %s" % (status, truncate(repr(body), 600)))
            print("  saved: %s (resend: conformance/fuzz.py --base URL --token TOKEN --replay %s)" % (saved, saved), flush=True)
        if status == 0 and not alive(client, prefix):
            print("fuzz: the server no longer answers; stopping after request #%d" % index)
            break
    if args.dry_run:
        return 0
    wall = time.monotonic() - started
    print("\nfuzz: %d requests in %.1f s (%.0f/s), seed %d; answers by status: %s" % (
        sent, wall, sent / wall if wall else 0, args.seed,
        ", ".join("%s: %d" % (k or "none", v) for k, v in sorted(statuses.items()))))
    for elapsed, index, req in sorted(slow, key=lambda s: -s[0])[:5]:
        print("fuzz: slow (%.1f s) request #%d %s %s" % (elapsed, index, req.method, truncate(req.path, 160)))
    if failures:
        print("fuzz: FAILED: %d of %d requests failed, by kind:" % (len(failures), sent))
        for (label, method, why, status), n in sorted(seen.items(), key=lambda s: -s[1]):
            print("  %5d  %s %s (%s): %s" % (n, method, label, status, why))
        print("fuzz: reproduce with --seed %d against a fresh server; failing requests saved under %s" % (
            args.seed, os.path.join(work, "fuzz-failures")))
        return 1
    if sent < args.requests:
        print("fuzz: FAILED: only %d of %d requests sent" % (sent, args.requests))
        return 1
    print("fuzz: OK (seed %d)" % args.seed)
    return 0


def save(work, n, req):
    folder = os.path.join(work, "fuzz-failures")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "%04d.json" % n)
    with open(path, "w") as f:
        json.dump(req.to_json(), f, indent=1)
    return path


def alive(client, prefix):
    try:
        client.close()
        status, _, _ = client.send(Request("alive", "GET", prefix + "/ServiceProviderConfig"))
        return status == 200
    except (OSError, http.client.HTTPException):
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="http://127.0.0.1:8080/scim/v2", help="the SCIM base URL")
    p.add_argument("--token", action="append", help="a directory's bearer token (repeat for several)")
    p.add_argument("--seed", type=int, default=None, help="the seed (default: random, printed)")
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an answer")
    p.add_argument("--slow", type=float, default=5.0, help="report requests slower than this (seconds)")
    p.add_argument("--show", type=int, default=3, help="print at most this many failures of one kind")
    p.add_argument("--work", help="where fuzz-failures/ is written (default: the current directory)")
    p.add_argument("--avoid", action="append", default=[], choices=["long-filters"],
                   help="leave out a kind of request (to look past a known failure; changes the sequence)")
    p.add_argument("--dry-run", action="store_true", help="print the requests the seed draws; send nothing")
    p.add_argument("--replay", help="send one saved request (fuzz-failures/NNNN.json) and check its answer")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
