"""Unit tests for fuzz.py: python3 -m unittest conformance/test_fuzz.py"""

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fuzz  # noqa: E402
from fuzz import ERROR_URN, Generator, Request, offline_schema, problem  # noqa: E402


def draw(seed, n):
    gen = Generator(seed, "/scim/v2", offline_schema(), ["t0", "t1"])
    return [gen.request(i).to_json() for i in range(n)]


def scim_error(status):
    return json.dumps({"schemas": [ERROR_URN], "status": str(status), "detail": "x"}).encode()


class Generation(unittest.TestCase):
    def test_the_same_seed_draws_the_same_requests(self):
        self.assertEqual(draw(7, 300), draw(7, 300))

    def test_another_seed_draws_other_requests(self):
        self.assertNotEqual(draw(7, 50), draw(8, 50))

    def test_every_endpoint_and_kind_of_request_is_drawn(self):
        requests = draw(13, 3000)
        labels = {r["label"] for r in requests}
        for label in ("boundary", "create-valid", "create-mutated", "replace", "patch", "list", "search", "bulk",
                      "discovery", "by-id", "raw-body", "content-encoding", "big-head"):
            self.assertIn(label, labels)
        paths = " ".join(r["path"] for r in requests)
        for endpoint in ("/Users?", "/Groups?", "/Bulk", "/Users/.search", "/scim/v2/.search",
                         "/ServiceProviderConfig", "/ResourceTypes", "/Schemas"):
            self.assertIn(endpoint, paths)
        queries = " ".join(r["path"].split("?", 1)[-1] for r in requests if "?" in r["path"])
        for param in ("filter=", "count=", "startIndex=", "attributes=", "excludedAttributes=", "sortBy=", "cursor="):
            self.assertIn(param, queries)

    def test_five_thousand_requests_send_every_boundary_case(self):
        gen = Generator(13, "/scim/v2", offline_schema(), ["t"])
        sent = [gen.request(i) for i in range(5000)]
        boundary = [r for r in sent if r.label == "boundary"]
        cases = {(r.method, r.path, r.body) for r in boundary}
        self.assertEqual(len(cases), 9)
        self.assertTrue(any("%5Cu0000" in r.path for r in boundary))
        self.assertTrue(any(b"\\u0000" in (r.body or b"") for r in boundary))

    def test_avoiding_long_filters_sends_no_chain_of_a_thousand_terms(self):
        def most_terms(gen):
            return max(
                sum(f.lower().count(w) for w in (" or ", " and ", "not (", "(("))
                for f in (gen.any_filter("User") for _ in range(3000))
            )

        self.assertLess(most_terms(Generator(13, "/scim/v2", offline_schema(), ["t"], avoid=["long-filters"])), 100)
        self.assertGreaterEqual(most_terms(Generator(13, "/scim/v2", offline_schema(), ["t"])), 997)


class Checking(unittest.TestCase):
    def req(self, method="GET", path="/scim/v2/Users", headers=()):
        return Request("test", method, path, list(headers))

    def test_a_5xx_fails_even_with_a_scim_body(self):
        self.assertIn("500", problem(self.req(), 500, scim_error(500)))
        self.assertIn("503", problem(self.req(), 503, scim_error(503)))

    def test_a_4xx_with_a_scim_error_body_passes(self):
        self.assertIsNone(problem(self.req(), 400, scim_error(400)))
        self.assertIsNone(problem(self.req(), 404, scim_error(404)))

    def test_a_4xx_without_a_scim_error_body_fails(self):
        self.assertIn("not JSON", problem(self.req(), 400, b""))
        self.assertIn("not JSON", problem(self.req(), 415, b"Content type error"))
        self.assertIn("schemas", problem(self.req(), 400, b'{"status": "400"}'))
        self.assertIn("status", problem(self.req(), 400, json.dumps({"schemas": [ERROR_URN], "status": 400}).encode()))
        self.assertIn("status", problem(self.req(), 409, scim_error(400)))

    def test_only_what_actix_answers_itself_may_lack_the_body(self):
        big = self.req(headers=[("X-Fuzz", "x" * 40_000)])
        self.assertIsNone(problem(big, 431, b""))
        self.assertIsNotNone(problem(big, 400, b"not json"))
        quoted = self.req(path='/scim/v2/Users?filter=userName eq "x"'.replace(" ", "%20"))
        self.assertIsNone(problem(quoted, 400, b""))
        self.assertIsNotNone(problem(quoted, 404, b""))
        self.assertIsNotNone(problem(self.req(path="/scim/v2/Users?filter=x"), 400, b""))

    def test_a_success_must_be_json_but_head_has_no_body(self):
        self.assertIn("not JSON", problem(self.req(), 200, b"<html>"))
        self.assertIsNone(problem(self.req(), 200, b"{}"))
        self.assertIsNone(problem(self.req(), 204, b""))
        self.assertIsNone(problem(self.req("HEAD"), 405, b""))


class FakeServer(BaseHTTPRequestHandler):
    """Discovery like dirsync's, a 500 for every filter that holds "boom"."""

    def log_message(self, *args):
        pass

    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/ResourceTypes"):
            return self.answer(200, {"Resources": [
                {"name": "User", "schema": fuzz.USER_URN, "schemaExtensions": [{"schema": fuzz.ENTERPRISE_URN}]},
                {"name": "Group", "schema": fuzz.GROUP_URN},
            ]})
        if self.path.endswith("/Schemas"):
            return self.answer(200, {"Resources": [
                {"id": fuzz.USER_URN, "attributes": [{"name": "userName", "type": "string"},
                                                     {"name": "emails", "type": "complex", "multiValued": True,
                                                      "subAttributes": [{"name": "value", "type": "string"}]}]},
                {"id": fuzz.ENTERPRISE_URN, "attributes": [{"name": "employeeNumber", "type": "string"}]},
                {"id": fuzz.GROUP_URN, "attributes": [{"name": "displayName", "type": "string"}]},
            ]})
        if "filter=" in self.path:
            return self.answer(500, {"schemas": [ERROR_URN], "status": "500", "detail": "boom"})
        return self.answer(404, {"schemas": [ERROR_URN], "status": "404"})

    def read_body(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer(400, {"schemas": [ERROR_URN], "status": "400"})

    do_POST = do_PUT = do_PATCH = do_DELETE = read_body


class Running(unittest.TestCase):
    def setUp(self):
        self.server = HTTPServer(("127.0.0.1", 0), FakeServer)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = "http://127.0.0.1:%d/scim/v2" % self.server.server_port
        self.work = tempfile.mkdtemp()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_a_500_fails_the_run_prints_the_request_and_saves_it_for_replay(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = fuzz.main(["--base", self.base, "--token", "secret-token", "--seed", "3", "--requests", "200", "--work", self.work])
        text = out.getvalue()
        self.assertEqual(rc, 1)
        self.assertIn("FAIL request #", text)
        self.assertIn("500 server error", text)
        self.assertIn("seed 3", text)
        self.assertNotIn("secret-token", text)
        saved = sorted(os.listdir(os.path.join(self.work, "fuzz-failures")))
        self.assertTrue(saved)
        with contextlib.redirect_stdout(io.StringIO()):
            again = fuzz.main(["--base", self.base, "--token", "t", "--replay", os.path.join(self.work, "fuzz-failures", saved[0])])
        self.assertEqual(again, 1)


if __name__ == "__main__":
    unittest.main()
