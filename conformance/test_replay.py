"""Unit tests for replay.py: python3 -m unittest conformance/test_replay.py"""

import json
import os
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import replay  # noqa: E402
from replay import MISSING, check_assertion, encode_path, resolve, substitute, tokenize  # noqa: E402

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = {
    "id": "u1",
    "userName": "bjensen",
    "active": False,
    "name": {"givenName": "Barbara"},
    "name.givenName": "literal",
    "emails": [
        {"type": "home", "value": "b@home"},
        {"type": "work", "value": "b@work", "primary": True},
        {"type": "work", "value": "second@work"},
    ],
    "members": [{"value": "m1"}, {"value": "m2"}, {"display": "no value"}],
    "groups": [],
    ENT: {"manager": {"value": "boss"}, "employeeNumber": "7"},
    "totalResults": 5,
    "title": "",
}


class EncodePath(unittest.TestCase):
    def test_space_quote_brackets_are_encoded(self):
        self.assertEqual(
            encode_path('/Users?filter=emails[type eq "work"].value eq "a b"'),
            "/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22a%20b%22",
        )

    def test_existing_escapes_and_plus_are_kept(self):
        p = "/Users/?filter=DisplayName+eq+%22BobIsAmazing%22"
        self.assertEqual(encode_path(p), p)
        self.assertEqual(encode_path("/Users?attributes=emails%5Btype+eq+%22work%22%5D"),
                         "/Users?attributes=emails%5Btype+eq+%22work%22%5D")

    def test_lone_percent_and_non_ascii(self):
        self.assertEqual(encode_path("/x?a=100%&b=%zz&c=é"), "/x?a=100%25&b=%25zz&c=%C3%A9")

    def test_legal_characters_untouched(self):
        p = "/Users?filter=(a eq b)&x=1,2;y='z'!*$:@/~"
        self.assertEqual(encode_path(p), p.replace(" ", "%20"))

    def test_join_url(self):
        self.assertEqual(replay.join_url("http://h/scim/v2/", "/Users"), "http://h/scim/v2/Users")
        self.assertEqual(replay.join_url("http://h/scim/v2", "Users"), "http://h/scim/v2/Users")


class JsonPath(unittest.TestCase):
    def r(self, path):
        return resolve(USER, path)[0]

    def test_dots_and_index(self):
        self.assertEqual(self.r("name.givenName"), "Barbara")
        self.assertEqual(self.r("emails[0].value"), "b@home")
        self.assertEqual(self.r("emails[-1].value"), "second@work")
        self.assertIs(self.r("emails[9].value"), MISSING)
        self.assertIs(self.r("nope.deeper"), MISSING)

    def test_escaped_dot_is_a_literal_key(self):
        self.assertEqual(self.r("name\\.givenName"), "literal")

    def test_type_filter_takes_first_match(self):
        self.assertEqual(self.r("emails[type=work].value"), "b@work")
        self.assertEqual(self.r('emails[type="work"].value'), "b@work")
        self.assertEqual(self.r("emails[primary=true].value"), "b@work")
        self.assertIs(self.r("emails[type=other].value"), MISSING)

    def test_wildcard_gives_list_path(self):
        self.assertEqual(resolve(USER, "members[*].value"), (["m1", "m2"], True))
        self.assertEqual(resolve(USER, "groups[*].value"), ([], True))
        self.assertEqual(resolve(USER, "missing[*].value"), (MISSING, False))

    def test_length(self):
        self.assertEqual(self.r("emails.length"), 3)
        self.assertEqual(self.r("groups.length"), 0)
        self.assertIs(self.r("userName.length"), MISSING)

    def test_urn_key(self):
        self.assertEqual(tokenize(ENT + ".manager.value"),
                         [("key", ENT), ("key", "manager"), ("key", "value")])
        self.assertEqual(self.r(ENT + ".manager.value"), "boss")
        self.assertEqual(self.r(ENT + ".employeeNumber"), "7")
        self.assertEqual(self.r(ENT)["employeeNumber"], "7")

    def test_urn_key_with_dotted_name_found_literally(self):
        doc = {"urn:example:v1.beta:Ext": {"a": 1}}
        self.assertEqual(resolve(doc, "urn:example:v1.beta:Ext.a")[0], 1)

    def test_root_list(self):
        self.assertEqual(resolve([{"a": 1}], "[0].a")[0], 1)

    def test_bad_syntax(self):
        for p in ("a..b", "a[", "a[x]", "a.", "a[0]b"):
            with self.assertRaises(replay.PathSyntaxError, msg=p):
                tokenize(p)


class Assertions(unittest.TestCase):
    def check(self, a, doc=USER, status=200, body=True):
        return check_assertion(a, doc, status, body)[0]

    def test_equals_is_strict_about_types(self):
        self.assertEqual(self.check({"path": "totalResults", "equals": 5}), "pass")
        self.assertEqual(self.check({"path": "totalResults", "equals": 5.0}), "pass")
        self.assertEqual(self.check({"path": "totalResults", "equals": "5"}), "fail")
        self.assertEqual(self.check({"path": "active", "equals": 0}), "fail")
        self.assertEqual(self.check({"path": "active", "equals": False}), "pass")
        self.assertEqual(self.check({"path": "groups", "equals": []}), "pass")
        self.assertEqual(self.check({"path": "nope", "equals": None}), "fail")

    def test_string_or_number_and_bool(self):
        self.assertEqual(self.check({"path": "totalResults", "equals_string_or_number": "5"}), "pass")
        self.assertEqual(self.check({"path": "id", "equals_string_or_number": "u1"}), "pass")
        self.assertEqual(self.check({"path": ENT + ".employeeNumber", "equals_string_or_number": 7}), "pass")
        self.assertEqual(self.check({"path": "active", "equals_string_or_bool": "False"}), "pass")
        self.assertEqual(self.check({"path": "active", "equals_string_or_bool": True}), "fail")
        self.assertEqual(self.check({"path": "active", "equals_string_or_number": 0}), "fail")

    def test_absent_family(self):
        self.assertEqual(self.check({"path": "nope", "equals_or_absent": []}), "pass")
        self.assertEqual(self.check({"path": "groups", "equals_or_absent": []}), "pass")
        self.assertEqual(self.check({"path": "emails", "equals_or_absent": []}), "fail")
        self.assertEqual(self.check({"path": "nope", "absent": True}), "pass")
        self.assertEqual(self.check({"path": "title", "absent": True}), "fail")
        self.assertEqual(self.check({"path": "title", "empty_or_absent": True}), "pass")
        self.assertEqual(self.check({"path": "nope", "empty_or_absent": True}), "pass")
        self.assertEqual(self.check({"path": "id", "empty_or_absent": True}), "fail")

    def test_conditional_equals(self):
        self.assertEqual(self.check({"path": "nope", "equals_if_present": 1}), "skip")
        self.assertEqual(self.check({"path": "id", "equals_if_present": "u2"}), "fail")
        self.assertEqual(check_assertion({"path": "id", "equals_if_body": "x"}, MISSING, 204, False)[0], "skip")
        self.assertEqual(self.check({"path": "id", "equals_if_body": "u1"}), "pass")

    def test_not_required_kinds_warn(self):
        self.assertEqual(self.check({"path": "id", "equals_recommended": "zz"}), "warn")
        self.assertEqual(self.check({"path": "id", "equals_recommended": "u1"}), "pass")
        self.assertEqual(self.check({"path": "id", "absent_per_rfc": True}), "warn")

    def test_not_empty(self):
        self.assertEqual(self.check({"path": "active", "not_empty": True}), "pass")
        for p in ("groups", "title", "nope"):
            self.assertEqual(self.check({"path": p, "not_empty": True}), "fail", p)

    def test_contains(self):
        self.assertEqual(self.check({"path": "members[*].value", "contains": "m2"}), "pass")
        self.assertEqual(self.check({"path": "members[*].value", "not_contains": "m3"}), "pass")
        self.assertEqual(self.check({"path": "members[*].value", "not_contains": "m1"}), "fail")
        self.assertEqual(self.check({"path": "members[*].value", "contains_all": ["m1", "m2"]}), "pass")
        self.assertEqual(self.check({"path": "members[*].value", "contains_all": ["m1", "m9"]}), "fail")
        self.assertEqual(self.check({"path": "nope", "contains_if_present": "x"}), "skip")
        self.assertEqual(self.check({"path": "nope", "contains": "x"}), "fail")
        self.assertEqual(self.check({"path": "members", "contains": {"value": "m1"}}), "pass")

    def test_number_kinds(self):
        self.assertEqual(self.check({"path": "totalResults", "is_integer": True}), "pass")
        self.assertEqual(self.check({"path": ENT + ".employeeNumber", "is_number": True}), "fail")
        self.assertEqual(self.check({"path": "active", "is_number": True}), "fail")

    def test_is_array_if(self):
        self.assertEqual(self.check({"path": "emails", "is_array_if": "present"}), "pass")
        self.assertEqual(self.check({"path": "userName", "is_array_if": "present"}), "fail")
        self.assertEqual(self.check({"path": "nope", "is_array_if": "present"}), "skip")
        self.assertEqual(self.check({"path": "id", "is_array_if": {"status": 201}}), "skip")
        self.assertEqual(self.check({"path": "groups", "is_array_if": {"path": "id", "equals": "u1"}}), "pass")

    def test_unknown_kind_fails(self):
        self.assertEqual(self.check({"path": "id", "looks_like": "x"}), "fail")


class Substitution(unittest.TestCase):
    def test_vars_uuid_and_keys(self):
        out = substitute({"a": "{{id}}", "{{k}}": ["x{{n}}", "{{uuid}}", "{{uuid}}"], "n": 1},
                         {"id": "u1", "k": "key", "n": 5})
        self.assertEqual(out["a"], "u1")
        self.assertEqual(out["key"][0], "x5")
        self.assertNotEqual(out["key"][1], out["key"][2])
        self.assertEqual(len(out["key"][1]), 36)

    def test_undefined(self):
        with self.assertRaises(replay.UndefinedVariable):
            substitute("{{gone}}", {})


class _Handler(BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *a):
        pass

    def _reply(self, status, obj):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Handler.seen.append((self.command, self.path, dict(self.headers), body))
        try:
            obj = json.loads(body)
        except ValueError:
            return self._reply(400, {"detail": "bad json"})
        self._reply(201, dict(obj, id="new-id"))

    def do_GET(self):
        _Handler.seen.append((self.command, self.path, dict(self.headers), b""))
        if self.path.startswith("/scim/v2/Users/new-id"):
            return self._reply(200, {"id": "new-id", "emails": [{"type": "work", "value": "w"}]})
        self._reply(404, {"detail": "nope"})

    def do_DELETE(self):
        _Handler.seen.append((self.command, self.path, dict(self.headers), b""))
        self._reply(204, None)


class EndToEnd(unittest.TestCase):
    """Runs main() against a tiny local server to check the wire behaviour."""

    def test_replay_file(self):
        import io
        import tempfile
        from contextlib import redirect_stdout

        srv = HTTPServer(("127.0.0.1", 0), _Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        steps = [
            {"name": "create", "method": "POST", "path": "/Users", "headers": {"Authorization": "{{auth}}"},
             "body": {"userName": "{{uuid}}"}, "expect": {"status": 201}, "capture": {"uid": "id"}},
            {"name": "raw", "method": "POST", "path": "/Users", "headers": {"Authorization": "Bearer {{token}}"},
             "body": {"__raw__": "{not json"}, "expect": {"status": 400, "body_text": [{"contains": "detail"}]}},
            {"name": "get", "method": "GET", "path": '/Users/{{uid}}?filter=a eq "b"+c',
             "headers": {}, "body": None,
             "expect": {"status": [200], "json": [{"path": "emails[type=work].value", "equals": "w"},
                                                 {"path": "id", "equals_recommended": "other"}]}},
            {"name": "missing", "method": "GET", "path": "/Nope", "headers": {}, "body": None,
             "expect": {"status": 200}},
            {"name": "uses failed capture", "method": "GET", "path": "/Users/{{never}}", "headers": {},
             "body": None, "expect": {"status": 200}},
            {"name": "delete", "method": "DELETE", "path": "/Users/{{uid}}", "headers": {}, "body": None,
             "expect": {"status": 204, "json": [{"path": "id", "equals_if_body": "x"}]}},
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"vendor": "t", "steps": steps}, f)
        buf = io.StringIO()
        try:
            with redirect_stdout(buf):
                rc = replay.main(["--base", "http://127.0.0.1:%d/scim/v2/" % srv.server_port,
                                  "--token", "T0K", f.name])
        finally:
            srv.shutdown()
            srv.server_close()
            os.unlink(f.name)
        out = buf.getvalue().splitlines()
        self.assertEqual(rc, 1, out)
        self.assertEqual(out[-1], "4 passed, 2 failed")
        self.assertTrue(out[1].startswith("PASS 000 create"), out)
        self.assertTrue(out[3].startswith("WARN 002 get"), out)
        self.assertTrue(out[4].startswith("FAIL 003 missing: status 404"), out)
        self.assertIn("undefined variable {{never}}", out[5])
        post1, post2, get = _Handler.seen[0], _Handler.seen[1], _Handler.seen[2]
        self.assertEqual(post1[2]["Authorization"], "Bearer T0K")
        self.assertEqual(post1[2]["Content-Type"], "application/json")
        self.assertEqual(post2[3], b"{not json")
        self.assertEqual(get[1], "/scim/v2/Users/new-id?filter=a%20eq%20%22b%22+c")


if __name__ == "__main__":
    unittest.main()
