#!/usr/bin/env python3
"""dirsync load benchmark: SCIM and the host API (see bench/README.md).

    cargo build --release --bin dirsync
    python3 bench/run.py --backend sqlite   --users 10000 100000
    python3 bench/run.py --backend postgres --users 10000 100000
    python3 bench/run.py --backend sqlite   --users 10000 100000 --suite api
    python3 bench/run.py --backend sqlite   --users 10000 --suite webhooks

For each N: starts a fresh server (new SQLite file, or a new PostgreSQL database that is
dropped afterwards), seeds N users through /Bulk (or concurrent POST /Users when Bulk is
not advertised), runs the scenarios with wrk (32 connections, 10 s each), measures S5 with
timed single PATCHes, samples the server's peak RSS (VmHWM, reset per scenario through
/proc/PID/clear_refs) and writes a markdown table to stdout and bench/results-BACKEND-N.md.
`--suite api` runs the host API's scenarios instead (bench/results-api-BACKEND-N.md):
users pages, a deep page against the first, the event feed, and a long-poll consumer
under S1 load; `--suite all` runs both.
`--suite webhooks` measures webhook delivery to a receiver inside this script
(bench/results-webhooks-BACKEND-N.md): replay throughput, and latency under S1 load.
Standard library only; needs `wrk` (Debian: apt-get install -y wrk) and, for PostgreSQL,
the psql client.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import http.client
import http.server
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import random
import re
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "conformance"))
import pgdb  # noqa: E402

LUA = os.path.join(HERE, "scenarios.lua")
SCIM_SCENARIOS = ("s1", "s1-tenants", "s2", "s3", "s4-offset", "s4-cursor", "s5")
API_SCENARIOS = ("api-users", "api-users-depth", "api-events", "api-longpoll")
WEBHOOK_SCENARIOS = ("webhooks-throughput", "webhooks-latency")
SOAK_SCENARIOS = ("soak",)
SCENARIOS = SCIM_SCENARIOS + API_SCENARIOS + WEBHOOK_SCENARIOS + SOAK_SCENARIOS
SUITES = {"scim": SCIM_SCENARIOS, "api": API_SCENARIOS, "all": SCIM_SCENARIOS + API_SCENARIOS,
          "webhooks": WEBHOOK_SCENARIOS, "soak": SOAK_SCENARIOS}
# Read scenarios first so they see exactly N users; S1 and the long-poll's S1 load add
# users; S5 last (it adds more).
RUN_ORDER = ("s2", "s3", "s4-offset", "s4-cursor", "api-users", "api-users-depth", "api-events",
             "webhooks-throughput", "s1", "s1-tenants", "api-longpoll", "webhooks-latency", "s5", "soak")
# The host API's HS256 secret for the run: the server verifies with it, `dirsync api-token`
# signs with it.
API_SECRET = "dirsync-bench-api-secret-0123456789abcdef"
TITLES = {
    "s1": "S1 POST /Users (unique userName)",
    "s1-tenants": "S1 spread over --tenants tenants (a directory and token each)",
    "s2": 'S2 GET /Users?filter=userName eq "…"',
    "s3": "S3 PATCH replace displayName + active",
    "s4-offset": "S4 GET /Users?startIndex=K&count=100",
    "s4-cursor": "S4 GET /Users?cursor=…&count=100",
    "s5": "S5 PATCH add 1,000 members (group of 100,000)",
    "api-users": "GET /api/v1/users?limit=100, following next_cursor",
    "api-users-depth": "GET /api/v1/users?limit=100: first page against a page 90% deep",
    "api-events": "GET /api/v1/events?after=K&limit=1000",
    "api-longpoll": "GET /api/v1/events?after=N&wait=30 under S1 load",
    "webhooks-throughput": "webhooks: replay of the seeded feed to one receiver",
    "webhooks-latency": "webhooks: receive time - created_at under S1 load",
    "soak": "soak: S1 and S3 in turn at half their peak",
}


def log(msg: str) -> None:
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# HTTP


class Client:
    """Keep-alive HTTP/1.1 client, one connection per thread."""

    def __init__(self, base: str, token: str, timeout: float = 600, media: str = "application/scim+json"):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.media = media
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.local.conn = c
        return c

    def request(self, method: str, path: str, body=None, auth: bool = True):
        headers = {"Accept": self.media}
        if auth:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = self.media
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self.local.conn = None
                return resp.status, raw
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body=None, ok=(200, 201, 204)):
        status, raw = self.request(method, path, body)
        if status not in ok:
            raise RuntimeError("%s %s -> %d %s" % (method, path, status, raw[:500].decode(errors="replace")))
        return json.loads(raw) if raw.strip() else None


# ---------------------------------------------------------------------------
# Server


class RssMonitor(threading.Thread):
    """Samples VmRSS/VmHWM of a process; peak() = max since the last reset()."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.max_rss = 0
        self.stop = threading.Event()
        self.hwm_resettable = True

    def _read(self):
        rss = hwm = 0
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return rss, hwm

    def run(self):
        while not self.stop.wait(0.2):
            try:
                self.max_rss = max(self.max_rss, self._read()[0])
            except OSError:
                return

    def reset(self):
        try:
            with open("/proc/%d/clear_refs" % self.pid, "w") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        except OSError:
            self.hwm_resettable = False
        try:
            self.max_rss = self._read()[0]
        except OSError:
            self.max_rss = 0

    def peak_mib(self) -> float:
        try:
            rss, hwm = self._read()
        except OSError:
            rss = hwm = 0
        return max(self.max_rss, rss, hwm) / 1024.0


class Server:
    def __init__(self, binary: str, db_url: str, workdir: str, rust_log: str):
        self.binary = binary
        self.db_url = db_url
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "server.log")
        self.env = dict(os.environ, RUST_LOG=rust_log, DIRSYNC_API_JWT_SECRET=API_SECRET)
        self.proc = None

    def enable_webhooks(self):
        """A fresh DIRSYNC_SECRET_KEY (webhook secrets are sealed with it) and http to loopback,
        for the server and the CLI alike."""
        out = subprocess.run([self.binary, "secret-key", "generate"], capture_output=True, text=True,
                             env=self.env, timeout=60)
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError("dirsync secret-key generate failed: %s" % out.stderr.strip()[-2000:])
        self.env["DIRSYNC_SECRET_KEY"] = out.stdout.strip().split()[-1]
        self.env["DIRSYNC_WEBHOOK_ALLOW_HTTP_LOOPBACK"] = "true"

    def cli(self, *args) -> dict:
        out = subprocess.run([self.binary, "--database-url", self.db_url, *args], capture_output=True,
                             text=True, env=self.env, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("dirsync %s failed: %s" % (" ".join(args), out.stderr.strip()[-2000:]))
        return json.loads(out.stdout) if out.stdout.strip() else {}

    def provision(self) -> str:
        with open(self.log_path, "ab") as lf:
            subprocess.run([self.binary, "--database-url", self.db_url, "migrate"], stdout=lf, stderr=lf,
                           env=self.env, check=True, timeout=300)
        return self.directory_token("bench")

    def directory_token(self, tenant: str) -> str:
        """A new tenant with one SCIM directory; its token."""
        self.cli("tenant", "create", tenant, "--json")
        d = self.cli("directory", "create", "--tenant", tenant, "--name", "bench", "--vendor", "generic", "--json")
        return self.cli("token", "create", "--directory", d["id"], "--json")["token"]

    def api_token(self, tenant: str = "bench", scope: str = "read") -> str:
        """A host-API JWT, minted as the README does (`dirsync api-token`)."""
        out = subprocess.run([self.binary, "api-token", "--tenant", tenant, "--scope", scope, "--ttl", "6h"],
                             capture_output=True, text=True, env=self.env, timeout=60)
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError("dirsync api-token failed: %s" % out.stderr.strip()[-2000:])
        return out.stdout.strip()

    def start(self) -> str:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        listen = "127.0.0.1:%d" % port
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--database-url", self.db_url, "serve", "--listen", listen,
             "--public-url", "http://" + listen],
            stdout=self.logf, stderr=self.logf, env=self.env)
        base = "http://%s/scim/v2" % listen
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s; see %s" % (self.proc.returncode, self.log_path))
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/scim/v2/ServiceProviderConfig")
                if c.getresponse().status == 200:
                    return base
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server not ready after 60 s; see %s" % self.log_path)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()

    def tail(self, n=40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------------------
# Seeding


def user_body(name: str, k: int) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": "ext-%s" % name,
        "name": {"givenName": "Bench", "familyName": "User %d" % k},
        "displayName": "Bench User %d" % k,
        "emails": [{"value": "%s@bench.example" % name, "type": "work", "primary": True}],
        "active": True,
    }


def bulk_settings(client: Client) -> tuple:
    spc = client.json("GET", "/ServiceProviderConfig")
    bulk = {k.lower(): v for k, v in (spc.get("bulk") or {}).items()}
    supported = bool(bulk.get("supported"))
    max_ops = int(bulk.get("maxoperations") or 0)
    max_payload = int(bulk.get("maxpayloadsize") or 0)
    return supported, max_ops, max_payload


def _id_from_op(op: dict):
    loc = op.get("location") or ""
    if loc:
        return loc.rstrip("/").rsplit("/", 1)[-1]
    resp = op.get("response")
    if isinstance(resp, dict) and resp.get("id"):
        return resp["id"]
    return None


def seed_users(client: Client, names: list, workers_bulk: int = 2, workers_post: int = 16) -> list:
    """Creates users with the given userNames; returns their ids in the same order."""
    supported, max_ops, max_payload = bulk_settings(client)
    ids = [None] * len(names)
    t0 = time.time()
    done = [0]
    lock = threading.Lock()

    def progress(k):
        with lock:
            done[0] += k
            if done[0] // 10000 != (done[0] - k) // 10000:
                rate = done[0] / max(time.time() - t0, 1e-6)
                log("seeded %d/%d users (%.0f/s)" % (done[0], len(names), rate))

    if supported and max_ops > 0:
        batch = min(1000, max_ops)
        sample = len(json.dumps({"method": "POST", "path": "/Users", "bulkId": "u0000000",
                                 "data": user_body(names[0], 0)})) + 2
        if max_payload:
            batch = max(1, min(batch, int(max_payload * 0.9) // sample))
        log("seeding %d users through /Bulk, %d operations per request" % (len(names), batch))

        def run_batch(start):
            ops = [{"method": "POST", "path": "/Users", "bulkId": "u%d" % k, "data": user_body(names[k], k)}
                   for k in range(start, min(start + batch, len(names)))]
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
            resp = client.json("POST", "/Bulk", body, ok=(200,))
            failed = []
            for op in resp.get("Operations") or []:
                bid = op.get("bulkId") or ""
                status = str(op.get("status", ""))
                status = status.get("code", "") if isinstance(status, dict) else status
                if bid.startswith("u") and str(status).startswith("2"):
                    ids[int(bid[1:])] = _id_from_op(op)
                else:
                    failed.append(op)
            if failed:
                raise RuntimeError("bulk: %d operations failed, first: %s" % (len(failed), json.dumps(failed[0])[:500]))
            progress(len(ops))

        with concurrent.futures.ThreadPoolExecutor(workers_bulk) as ex:
            list(ex.map(run_batch, range(0, len(names), batch)))
    else:
        log("Bulk not advertised: seeding %d users with %d concurrent POST /Users" % (len(names), workers_post))

        def run_one(k):
            ids[k] = client.json("POST", "/Users", user_body(names[k], k), ok=(201,))["id"]
            if k % 100 == 99:
                progress(100)

        with concurrent.futures.ThreadPoolExecutor(workers_post) as ex:
            list(ex.map(run_one, range(len(names)), chunksize=64))
    missing = sum(1 for i in ids if not i)
    if missing:
        raise RuntimeError("seeding: %d users have no id" % missing)
    return ids


# ---------------------------------------------------------------------------
# Scenarios


def wrk_cmd(scenario, base, token, n, ids_file, args, run_id, duration, delay_ms=0.0) -> list:
    return ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % duration,
            "--timeout", "30s", "-s", LUA, base, "--", scenario, token, str(n), ids_file, run_id,
            "%.3f" % delay_ms]


def run_wrk(scenario, base, token, n, ids_file, args, run_id, duration=None, delay_ms=0.0) -> dict:
    duration = duration or args.duration
    cmd = wrk_cmd(scenario, base, token, n, ids_file, args, run_id, duration, delay_ms)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    return wrk_result(out)


def wrk_result(out) -> dict:
    res, err = None, ""
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            res = json.loads(line[len("BENCHJSON "):])
        elif line.startswith("BENCHERR "):
            err = line[len("BENCHERR "):].strip()
    if out.returncode != 0 or res is None:
        raise RuntimeError("wrk failed (%d): %s %s" % (out.returncode, out.stdout[-1500:], out.stderr[-1500:]))
    secs = res["duration_us"] / 1e6
    socket_errors = res["connect"] + res["read"] + res["write"] + res["timeout"]
    return {
        "rps": res["requests"] / secs if secs else 0.0,
        "requests": res["requests"],
        "p50_ms": res["p50_us"] / 1000.0,
        "p99_ms": res["p99_us"] / 1000.0,
        "errors": res["non2xx"] + socket_errors,
        "error_detail": "%d non-2xx, %d socket" % (res["non2xx"], socket_errors),
        "first_error": err,
        "events": res.get("events", 0),
        "events_per_s": res.get("events", 0) / secs if secs else 0.0,
    }


def open_fds(pid: int) -> int:
    return len(os.listdir("/proc/%d/fd" % pid))


def run_soak(base: str, token: str, n: int, ids_file: str, args, run_id: str, pid: int) -> dict:
    """S1 and S3 in turn: first unpaced for --duration s (the mix's peak), then paced at
    --soak-fraction of that peak for --soak-minutes, sampling the server's RSS and open
    file descriptors every --soak-sample s."""
    peak = run_wrk("mix", base, token, n, ids_file, args, run_id + "p")
    target = peak["rps"] * args.soak_fraction
    # wrk's delay() waits after each answer, so a connection's period is delay + latency;
    # one short calibration run corrects the first guess by the rate it reached.
    delay = args.connections * 1000.0 / max(target, 1.0)
    cal = run_wrk("mix", base, token, n, ids_file, args, run_id + "c", duration=15, delay_ms=delay)
    if cal["rps"] > 0:
        delay = max(0.0, delay - args.connections * 1000.0 * (1.0 / cal["rps"] - 1.0 / target))
    log("soak: mix peak %.0f req/s; target %.0f req/s (delay %.1f ms per connection) for %d min"
        % (peak["rps"], target, delay, args.soak_minutes))
    secs = int(args.soak_minutes * 60)
    cmd = wrk_cmd("mix", base, token, n, ids_file, args, run_id + "s", secs, delay)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []  # (seconds since start, RSS KiB, open fds)
    t0 = time.time()
    while proc.poll() is None:
        time.sleep(args.soak_sample)
        try:
            rss = 0
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
            samples.append((time.time() - t0, rss, open_fds(pid)))
        except OSError:
            break
    stdout, stderr = proc.communicate(timeout=120)
    r = wrk_result(subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr))

    def mean_rss(lo, hi):
        xs = [rss for t, rss, _ in samples if lo <= t < hi]
        return statistics.mean(xs) / 1024.0 if xs else 0.0

    second = mean_rss(60, 120)
    last = mean_rss(secs - 60, secs + 60)
    fds = [fd for _, _, fd in samples]
    r.update({
        "peak_rps": peak["rps"], "target_rps": target, "delay_ms": delay, "minutes": args.soak_minutes,
        "rss_second_min_mib": second, "rss_last_min_mib": last,
        "rss_growth": (last / second - 1.0) if second else 0.0,
        "fds_first": fds[0] if fds else 0, "fds_last": fds[-1] if fds else 0, "fds_max": max(fds) if fds else 0,
        "samples": samples,
    })
    return r


def soak_lines(r: dict) -> list:
    lines = ["", "| soak | value |", "|---|---:|",
             "| S1+S3 mix, unpaced peak (req/s) | %.0f |" % r["peak_rps"],
             "| target (req/s) | %.0f |" % r["target_rps"],
             "| held for (min) | %g |" % r["minutes"],
             "| rate reached (req/s) | %.0f |" % r["rps"],
             "| requests | %d |" % r["requests"],
             "| p50 / p99 (ms) | %s / %s |" % (fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"])),
             "| errors | %d (%s) |" % (r["errors"], r["error_detail"]),
             "| RSS, mean of minute 2 (MiB) | %.1f |" % r["rss_second_min_mib"],
             "| RSS, mean of the last minute (MiB) | %.1f |" % r["rss_last_min_mib"],
             "| last minute against minute 2 | %+.1f%% |" % (100.0 * r["rss_growth"]),
             "| open file descriptors: first / last / max sample | %d / %d / %d |"
             % (r["fds_first"], r["fds_last"], r["fds_max"])]
    lines += ["", "RSS and open descriptors, sampled every few seconds (minute: mean RSS MiB, last fds):", ""]
    by_min = {}
    for t, rss, fd in r["samples"]:
        by_min.setdefault(int(t // 60), []).append((rss, fd))
    lines.append(" ".join("%d: %.0f/%d" % (m + 1, statistics.mean(x for x, _ in v) / 1024.0, v[-1][1])
                          for m, v in sorted(by_min.items())))
    return lines


def run_s5(client: Client, ids: list, names_prefix: str, args) -> dict:
    group_size, add, reps = args.s5_group_size, args.s5_add, args.s5_reps
    need = group_size + add * reps
    if len(ids) < need:
        extra = need - len(ids)
        log("S5: seeding %d extra users (group of %d + %d x %d fresh members)" % (extra, group_size, reps, add))
        names = ["%s-%07d" % (names_prefix, k) for k in range(extra)]
        ids = ids + seed_users(client, names)
    members, fresh = ids[:group_size], ids[group_size:need]
    group = client.json("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                            "displayName": "bench-s5-%d" % time.time()}, ok=(201,))
    gid = group["id"]
    chunk = 10000
    pos = 0
    t0 = time.time()
    while pos < len(members):
        part = members[pos:pos + chunk]
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in part]}]}
        status, raw = client.request("PATCH", "/Groups/%s?excludedAttributes=members" % gid, body)
        if status in (200, 204):
            pos += len(part)
            if pos % 20000 < len(part):
                log("S5: group has %d members (%.0f s)" % (pos, time.time() - t0))
        elif status in (400, 413) and chunk > 500:
            chunk //= 2
            log("S5: PATCH of %d members -> %d; retrying with %d" % (len(part), status, chunk))
        else:
            raise RuntimeError("S5 setup PATCH -> %d %s" % (status, raw[:300].decode(errors="replace")))
    log("S5: group %s built with %d members in %.0f s" % (gid, len(members), time.time() - t0))
    lat, errors, first_err = [], 0, ""
    for r in range(reps):
        part = fresh[r * add:(r + 1) * add]
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in part]}]}
        # A client that manages a 100,000-member group asks for the group without
        # its members (Entra does, docs/vendor-quirks.md E15, E22); the membership
        # write is timed.
        t = time.perf_counter()
        status, raw = client.request("PATCH", "/Groups/%s?excludedAttributes=members" % gid, body)
        dt = time.perf_counter() - t
        if status not in (200, 204):
            errors += 1
            first_err = first_err or "%d %s" % (status, raw[:300].decode(errors="replace"))
        lat.append(dt * 1000)
        log("S5: PATCH +%d members #%d -> %d in %.0f ms (%d bytes back)" % (len(part), r + 1, status, dt * 1000, len(raw)))
    return {"rps": None, "requests": reps, "p50_ms": statistics.median(lat), "max_ms": max(lat),
            "errors": errors, "error_detail": "%d non-2xx" % errors, "first_error": first_err}


# ---------------------------------------------------------------------------
# The host API's scenarios


def last_seq(api: Client) -> int:
    """The feed's newest sequence number: a binary search on `after` with limit=1
    (the feed is gap-free and starts at 1)."""
    def more_after(k: int) -> bool:
        return bool(api.json("GET", "/events?limit=1&after=%d" % k)["data"])

    if not more_after(0):
        return 0
    lo, hi = 0, 1024
    while more_after(hi):  # invariant: an event after lo
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # an event after lo, none after hi
        mid = (lo + hi) // 2
        if more_after(mid):
            lo = mid
        else:
            hi = mid
    return hi


def timed_get(api: Client, path: str) -> tuple:
    t = time.perf_counter()
    status, raw = api.request("GET", path)
    dt = (time.perf_counter() - t) * 1000
    if status != 200:
        raise RuntimeError("GET %s -> %d %s" % (path, status, raw[:300].decode(errors="replace")))
    return dt, json.loads(raw)


def run_users_depth(api: Client, n: int, args) -> dict:
    """Walks next_cursor from the first page to the one ~90% deep (90,000 of 100,000),
    then times the first page and that page, alternately, args.depth_reps times each."""
    depth = (int(n * 0.9) // 100) * 100
    path_first = "/users?limit=100"
    cursor, seen, t0 = None, 0, time.time()
    while seen < depth:
        page = api.json("GET", path_first + ("&after=" + urllib.parse.quote(cursor) if cursor else ""))
        seen += len(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            raise RuntimeError("users list ended after %d users, before %d" % (seen, depth))
    log("api-users-depth: walked %d users in %.1f s to the cursor" % (seen, time.time() - t0))
    path_deep = path_first + "&after=" + urllib.parse.quote(cursor)
    first, deep = [], []
    for path in (path_first, path_deep):  # warm-up
        timed_get(api, path)
    for _ in range(args.depth_reps):
        dt, page = timed_get(api, path_first)
        first.append(dt)
        dt, page = timed_get(api, path_deep)
        if len(page["data"]) != 100:
            raise RuntimeError("the deep page held %d users, not 100" % len(page["data"]))
        deep.append(dt)
    f, d = statistics.median(first), statistics.median(deep)
    return {"rps": None, "requests": 2 * args.depth_reps, "depth": seen, "first_ms": f, "deep_ms": d,
            "ratio": d / f if f else 0.0, "errors": 0, "error_detail": "", "first_error": ""}


def run_events(base_api: str, api: Client, token: str, ids_file: str, args, run_id) -> dict:
    """wrk at random `after` (every page full), then one consumer reading the whole feed
    from the start, 1,000 at a time."""
    top = last_seq(api)
    if top < 1000:
        raise RuntimeError("the feed holds %d events, fewer than one page" % top)
    r = run_wrk("api-events", base_api, token, top, ids_file, args, run_id)
    r["feed_events"] = top
    t0, after, got = time.perf_counter(), 0, 0
    while True:
        page = api.json("GET", "/events?limit=1000&after=%d" % after)
        if not page["data"]:
            break
        got += len(page["data"])
        after = page["next_after"]
    secs = time.perf_counter() - t0
    r["catchup_events"], r["catchup_s"] = got, secs
    log("api-events: one consumer read %d events from seq 0 in %.2f s (%.0f events/s)" % (got, secs, got / secs))
    return r


NEXT_AFTER = re.compile(rb'"next_after":(\d+)\}\s*$')


def probe_longpoll(scim: Client, api: Client, samples: int, run_id: str, tag: str, until=None) -> dict:
    """A consumer follows the feed with long-polls (`after=N&wait=30`, every event, no
    filter) while a writer creates one probe user at a time over SCIM, 20-80 ms apart.
    For each probe: when the writer sent it, when its 201 came back, and when the
    consumer's long-poll returned the page holding its `user.created` (found by the probe's
    userName in the page's bytes)."""
    seen = {}
    stop = threading.Event()
    start_after = last_seq(api)
    errors = []

    def consume():
        after = start_after
        while not stop.is_set():
            try:
                status, raw = api.request("GET", "/events?limit=1000&wait=30&after=%d" % after)
            except (OSError, http.client.HTTPException) as e:
                errors.append("long-poll: %s" % e)
                return
            t = time.perf_counter()
            if status != 200:
                errors.append("long-poll -> %d %s" % (status, raw[:200].decode(errors="replace")))
                return
            for name in list(pending):
                if name.encode() in raw:
                    seen.setdefault(name, t)
                    pending.discard(name)
            m = NEXT_AFTER.search(raw[-64:])
            after = int(m.group(1)) if m else json.loads(raw)["next_after"]

    pending = set()
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    rows = []
    for k in range(samples):
        if until is not None and time.time() > until:
            break
        time.sleep(random.uniform(0.02, 0.08))
        name = "bench-probe-%s-%s-%d" % (run_id, tag, k)
        pending.add(name)
        t_send = time.perf_counter()
        status, raw = scim.request("POST", "/Users", user_body(name, k))
        t_201 = time.perf_counter()
        if status != 201:
            errors.append("probe POST /Users -> %d %s" % (status, raw[:200].decode(errors="replace")))
            pending.discard(name)
            continue
        deadline = time.time() + 10
        while name not in seen and time.time() < deadline and consumer.is_alive():
            time.sleep(0.001)
        if name not in seen:
            errors.append("probe %s not seen by the consumer within 10 s" % name)
            pending.discard(name)
            continue
        rows.append((t_send, t_201, seen[name]))
    stop.set()
    if not rows:
        raise RuntimeError("no long-poll samples: %s" % "; ".join(errors[:3]))
    after_201 = sorted(max(0.0, seen_at - t201) * 1000 for _, t201, seen_at in rows)
    after_send = sorted((seen_at - sent) * 1000 for sent, _, seen_at in rows)
    write = sorted((t201 - sent) * 1000 for sent, t201, _ in rows)

    def pct(xs, p):
        return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

    return {
        "samples": len(rows),
        "before_201": sum(1 for _, t201, seen_at in rows if seen_at <= t201),
        "p50_ms": pct(after_201, 50), "p99_ms": pct(after_201, 99), "max_ms": after_201[-1],
        "send_p50_ms": pct(after_send, 50), "send_p99_ms": pct(after_send, 99),
        "write_p50_ms": pct(write, 50), "write_p99_ms": pct(write, 99),
        "errors": len(errors), "error_detail": "%d probes lost or failed" % len(errors),
        "first_error": errors[0] if errors else "",
    }


def run_longpoll(scim: Client, api: Client, scim_base: str, scim_token: str, n: int, ids_file: str,
                 args, run_id: str) -> dict:
    """The probe without load, then again while wrk runs S1 (its own userNames)."""
    idle = probe_longpoll(scim, api, args.longpoll_idle_samples, run_id, "idle")
    log("api-longpoll idle: p50 %.1f ms, p99 %.1f ms after the 201 (%d samples)" % (
        idle["p50_ms"], idle["p99_ms"], idle["samples"]))
    load = {}

    def s1():
        load.update(run_wrk("s1", scim_base, scim_token, n, ids_file, args, run_id + "-lp",
                            duration=args.longpoll_duration))

    bg = threading.Thread(target=s1, daemon=True)
    started = time.time()
    bg.start()
    time.sleep(1.0)  # let wrk open its connections
    r = probe_longpoll(scim, api, args.longpoll_samples, run_id, "load",
                       until=started + args.longpoll_duration - 1)
    bg.join()
    if not load:
        raise RuntimeError("the S1 load (wrk) gave no result")
    if r["samples"] < args.longpoll_samples:
        log("api-longpoll: %d of %d samples fit in %d s of S1 load (--longpoll-duration)" % (
            r["samples"], args.longpoll_samples, args.longpoll_duration))
    r["idle"] = idle
    r["s1"] = load
    r["rps"] = None
    return r



# ---------------------------------------------------------------------------
# Webhooks (issue 11)


class Sink:
    """What one receiver path got: the first receive time of each event's seq, and with
    keep=True the bodies (for the events' created_at)."""

    def __init__(self, expect_from: int, expect_to: int = 0, keep: bool = False):
        self.lo, self.hi = expect_from, expect_to
        self.keep = keep
        self.first_at = {}  # seq -> first receive time (epoch s)
        self.bodies = []  # (receive time, body) when keep
        self.posts = 0
        self.events = 0  # events in all POSTs, duplicates included
        self.first_post = self.last_new = None
        self.done = threading.Event()
        self.lock = threading.Lock()

    def expect(self, upto: int):
        with self.lock:
            self.hi = upto
            self._check()

    def _check(self):
        if self.hi >= self.lo and all(k in self.first_at for k in (self.lo, self.hi)) and \
                len(self.first_at) >= self.hi - self.lo + 1:
            self.done.set()

    def add(self, seqs: range, body: bytes, t: float):
        with self.lock:
            self.posts += 1
            self.events += len(seqs)
            if self.first_post is None:
                self.first_post = t
            for k in seqs:
                if k not in self.first_at:
                    self.first_at[k] = t
                    self.last_new = t
            if self.keep:
                self.bodies.append((t, body))
            self._check()


class Receiver:
    """Webhook receiver: http.server.ThreadingHTTPServer on 127.0.0.1 port 0, in a thread,
    answering 200 at once (HTTP/1.1 keep-alive). It does not verify signatures (the
    conformance suite does); events are counted from `webhook-id` (`evt_T_SEQ`, or
    `batch_T_FIRST_LAST`)."""

    def __init__(self):
        self.sinks = {}
        self.errors = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                t = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.record(self.path, self.headers.get("webhook-id") or "", body, t)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)

    def record(self, path: str, wid: str, body: bytes, t: float):
        sink = self.sinks.get(path)
        parts = wid.split("_")
        try:
            if parts[0] == "evt" and len(parts) == 3:
                seqs = range(int(parts[2]), int(parts[2]) + 1)
            elif parts[0] == "batch" and len(parts) == 4:
                seqs = range(int(parts[2]), int(parts[3]) + 1)
            else:
                raise ValueError(wid)
        except ValueError:
            self.errors.append("unexpected webhook-id %r on %s" % (wid, path))
            return
        if sink is None:
            self.errors.append("POST to unknown path %s" % path)
            return
        sink.add(seqs, body, t)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def create_hook(admin: Client, url: str, batch: int, what: str) -> str:
    w = admin.json("POST", "/webhooks", {"url": url, "batch_size": batch, "description": what}, ok=(201,))
    return w["id"]


def run_webhook_throughput(admin: Client, api: Client, receiver: Receiver, args) -> dict:
    """Per batch size: a new endpoint (it starts after the newest event), then `replay` from
    seq 1 through the API (a commit of the server's own, so its worker wakes at once); timed
    from the replay request to the receiver holding every event of the feed."""
    top = last_seq(api)
    if top < 1:
        raise RuntimeError("the feed is empty")
    rows = []
    for b in args.webhook_batch_sizes:
        path = "/hook/replay-b%d" % b
        sink = receiver.sinks[path] = Sink(1, top)
        hid = create_hook(admin, receiver.url(path), b, "bench replay, batch %d" % b)
        t0 = time.time()
        admin.json("POST", "/webhooks/%s/replay" % hid, {"from_seq": 1})
        finished = sink.done.wait(args.webhook_timeout)
        t_end = sink.last_new if finished else time.time()
        admin.json("POST", "/webhooks/%s/disable" % hid)
        got = len(sink.first_at)
        secs = max((t_end or t0) - t0, 1e-9)
        row = {"batch": b, "events": top, "received": got, "secs": secs, "events_per_s": got / secs,
               "posts": sink.posts, "duplicates": sink.events - got,
               "first_post_ms": ((sink.first_post or t0) - t0) * 1000, "complete": finished}
        rows.append(row)
        log("webhooks-throughput batch %d: %d/%d events in %.2f s = %.0f events/s (%d POSTs, first %.0f ms "
            "after the replay, %d duplicates)%s" % (b, got, top, secs, row["events_per_s"], sink.posts,
                                                    row["first_post_ms"], row["duplicates"],
                                                    "" if finished else " INCOMPLETE"))
    errors = sum(1 for r in rows if not r["complete"])
    return {"rps": None, "rows": rows, "errors": errors + len(receiver.errors),
            "error_detail": "%d incomplete runs, %d receiver errors" % (errors, len(receiver.errors)),
            "first_error": receiver.errors[0] if receiver.errors else ""}


def event_time(created_at: str) -> float:
    return datetime.datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def pct(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run_webhook_latency(admin: Client, api: Client, receiver: Receiver, scim_base: str, scim_token: str,
                        n: int, ids_file: str, args, run_id: str) -> dict:
    """Per batch size: a new endpoint, then wrk runs S1 (args.duration s); afterwards the
    receiver gets until the endpoint has caught up with the feed (args.webhook_timeout).
    For every event S1 wrote (the feed's events after the endpoint was created, up to its
    last one 1 s after wrk ended): first receive time - its created_at."""
    rows = []
    for b in args.webhook_batch_sizes:
        path = "/hook/s1-b%d" % b
        start_seq = last_seq(api)
        sink = receiver.sinks[path] = Sink(start_seq + 1, 0, keep=True)
        hid = create_hook(admin, receiver.url(path), b, "bench S1 latency, batch %d" % b)
        time.sleep(0.2)
        w0 = time.time()
        load = run_wrk("s1", scim_base, scim_token, n, ids_file, args, "%s-wh%d" % (run_id, b))
        w1 = time.time()
        time.sleep(1.0)  # requests wrk left in flight still commit
        top = last_seq(api)
        sink.expect(top)
        caught = sink.done.wait(args.webhook_timeout)
        drained = time.time() - w1
        admin.json("POST", "/webhooks/%s/disable" % hid)
        with sink.lock:
            bodies = list(sink.bodies)
        first = {}
        for t, body in bodies:
            doc = json.loads(body)
            for ev in (doc["data"] if "data" in doc and "seq" not in doc else [doc]):
                if ev["seq"] not in first:
                    first[ev["seq"]] = (t, event_time(ev["created_at"]))
        first = {k: v for k, v in first.items() if start_seq < k <= top}
        lat = sorted((t - c) * 1000 for t, c in first.values())
        written = top - start_seq
        if not lat:
            raise RuntimeError("no event of the S1 window reached the receiver")
        row = {"batch": b, "s1_rps": load["rps"], "s1_p99_ms": load["p99_ms"], "s1_errors": load["errors"],
               "written": written, "received": len(first), "samples": len(lat),
               "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": lat[-1], "caught_up": caught,
               "drain_s": drained, "posts": sink.posts}
        rows.append(row)
        log("webhooks-latency batch %d: S1 %.0f req/s; %d/%d events received, latency p50 %.0f / p99 %.0f / "
            "max %.0f ms; caught up %.1f s after wrk%s" % (
                b, load["rps"], len(first), written, row["p50_ms"], row["p99_ms"], row["max_ms"],
                drained, "" if caught else " (NOT caught up: timeout)"))
    missing = sum(r["written"] - r["received"] for r in rows)
    return {"rps": None, "rows": rows, "errors": missing + sum(r["s1_errors"] for r in rows),
            "error_detail": "%d events not received, S1 errors %d" % (missing, sum(r["s1_errors"] for r in rows)),
            "first_error": receiver.errors[0] if receiver.errors else ""}


def webhook_lines(key: str, r: dict) -> list:
    if key == "webhooks-throughput":
        out = ["| batch_size | events | received | time (s) | events/s | POSTs | first POST after the replay (ms) "
               "| duplicates |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for x in r["rows"]:
            out.append("| %d | %s | %s | %.2f | %s | %s | %.0f | %d |" % (
                x["batch"], "{:,}".format(x["events"]), "{:,}".format(x["received"]), x["secs"],
                "{:,.0f}".format(x["events_per_s"]), "{:,}".format(x["posts"]), x["first_post_ms"],
                x["duplicates"]))
        return out
    out = ["| batch_size | S1 req/s (p99 ms) | events written | received | p50 (ms) | p99 (ms) | max (ms) "
           "| caught up after wrk (s) |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for x in r["rows"]:
        out.append("| %d | %.0f (%s) | %s | %s | %s | %s | %s | %s |" % (
            x["batch"], x["s1_rps"], fmt_ms(x["s1_p99_ms"]), "{:,}".format(x["written"]),
            "{:,}".format(x["received"]), fmt_ms(x["p50_ms"]), fmt_ms(x["p99_ms"]), fmt_ms(x["max_ms"]),
            ("%.1f" % x["drain_s"]) if x["caught_up"] else "no (timeout)"))
    return out

# ---------------------------------------------------------------------------
# Report


def api_cell(key: str, r: dict) -> str:
    """One host-API scenario's figures, in words."""
    if key == "api-users":
        return "%.0f req/s, p50 %s / p99 %s ms" % (r["rps"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]))
    if key == "api-users-depth":
        return "first page %.2f ms, page %s users deep %.2f ms (medians of %d each): ratio %.2f" % (
            r["first_ms"], "{:,}".format(r["depth"]), r["deep_ms"], r["requests"] // 2, r["ratio"])
    if key == "api-events":
        return ("%.0f req/s = %s events/s, p50 %s / p99 %s ms (feed of %s events); one consumer from seq 0: "
                "%s events/s" % (r["rps"], "{:,.0f}".format(r["events_per_s"]), fmt_ms(r["p50_ms"]),
                                 fmt_ms(r["p99_ms"]), "{:,}".format(r["feed_events"]),
                                 "{:,.0f}".format(r["catchup_events"] / max(r["catchup_s"], 1e-9))))
    if key == "api-longpoll":
        idle, s1 = r["idle"], r["s1"]
        return ("under S1 (%.0f req/s, p99 %s ms): after the 201 p50 %s / p99 %s / max %s ms, from send p50 %s / "
                "p99 %s ms, %d samples (%d seen before the 201; the probe's own write p50 %s / p99 %s ms); "
                "idle: after the 201 p50 %s / p99 %s ms, from send p99 %s ms (%d samples)" % (
                    s1["rps"], fmt_ms(s1["p99_ms"]), fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]),
                    fmt_ms(r["send_p50_ms"]), fmt_ms(r["send_p99_ms"]), r["samples"], r["before_201"],
                    fmt_ms(r["write_p50_ms"]), fmt_ms(r["write_p99_ms"]), fmt_ms(idle["p50_ms"]),
                    fmt_ms(idle["p99_ms"]), fmt_ms(idle["send_p99_ms"]), idle["samples"]))
    return ""


def fmt_ms(v: float) -> str:
    return "%.1f" % v if v < 100 else "%.0f" % v


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d cores, %s, %s" % (os.cpu_count() or 0, cpu or platform.processor(), platform.platform())


def write_report(path, backend, n, results, meta) -> str:
    lines = [
        "# dirsync load benchmark: %s, %s users" % (backend, "{:,}".format(n)),
        "",
        "- date: %s" % meta["date"],
        "- machine: %s" % meta["machine"],
        "- binary: `%s`; repo HEAD when the run started: %s" % (meta["binary"], meta["commit"]),
        "- load: %s, %d connections, %d wrk threads, %d s per scenario, over loopback on the same machine"
        % (meta["wrk"], meta["connections"], meta["threads"], meta["duration"]),
        "- seeding: %s users in %.1f s (%.0f users/s, %s)" % ("{:,}".format(n), meta["seed_s"], n / max(meta["seed_s"], 1e-6), meta["seed_how"]),
        "- peak RSS: dirsync process VmHWM (reset before each scenario via /proc/PID/clear_refs)%s; the database server's own memory is not included"
        % ("" if meta["hwm_reset"] else " (reset unavailable: cumulative peak)"),
        "- command: `%s`" % meta["command"],
        "- load average before the first scenario: %s" % meta["load"],
    ]
    if any(k in results for k in SCIM_SCENARIOS):
        lines += ["", "| scenario | req/s | p50 (ms) | p99 (ms) | errors | peak RSS (MiB) |",
                  "|---|---:|---:|---:|---:|---:|"]
    for key in SCIM_SCENARIOS:
        r = results.get(key)
        if r is None:
            continue
        if "skipped" in r:
            lines.append("| %s | - | - | - | skipped: %s | - |" % (TITLES[key], r["skipped"]))
            continue
        if key == "s5":
            title = "S5 PATCH add {:,} members (group of {:,})".format(meta["s5_add"], meta["s5_group"])
            lines.append("| %s | - (%d timed PATCHes) | %s | max %s | %d | %.0f |" % (
                title, r["requests"], fmt_ms(r["p50_ms"]), fmt_ms(r["max_ms"]), r["errors"], r["rss_mib"]))
        else:
            lines.append("| %s | %.0f | %s | %s | %d | %.0f |" % (
                TITLES[key], r["rps"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), r["errors"], r["rss_mib"]))
    if any(k in results for k in API_SCENARIOS):
        lines += ["", "| host API scenario | result | errors | peak RSS (MiB) |", "|---|---|---:|---:|"]
    for key in API_SCENARIOS:
        r = results.get(key)
        if r is None:
            continue
        if "skipped" in r:
            lines.append("| %s | skipped: %s | - | - |" % (TITLES[key], r["skipped"]))
            continue
        lines.append("| %s | %s | %d | %.0f |" % (TITLES[key], api_cell(key, r), r["errors"], r["rss_mib"]))
    for key in WEBHOOK_SCENARIOS:
        r = results.get(key)
        if r is None:
            continue
        lines += ["", "%s (errors %d: %s, peak RSS %.0f MiB)" % (TITLES[key], r["errors"], r["error_detail"],
                                                                r["rss_mib"]) if "skipped" not in r
                  else "%s: skipped: %s" % (TITLES[key], r["skipped"]), ""]
        if "skipped" not in r:
            lines += webhook_lines(key, r)
    if any(k in results for k in WEBHOOK_SCENARIOS):
        lines += ["", "webhooks: one receiver (Python ThreadingHTTPServer on loopback, 200 at once, no signature "
                  "check). Throughput: a new endpoint after seeding, `POST /api/v1/webhooks/{id}/replay "
                  '{"from_seq":1}`, timed from that request to the receiver holding every seeded event. '
                  "Latency: a new endpoint, then wrk S1 for %d s; per event S1 wrote, its first receive time "
                  "minus its `created_at` (ms precision, set in the writing transaction)."
                  % meta["duration"]]
    if "soak" in results:
        r = results["soak"]
        lines += ["", TITLES["soak"] + (": skipped: %s" % r["skipped"] if "skipped" in r else "")]
        if "skipped" not in r:
            lines += soak_lines(r)
    errs = [(k, results[k]) for k in SCENARIOS if k in results and results[k].get("first_error")]
    if errs:
        lines += ["", "First error response per scenario:", ""]
        for k, r in errs:
            lines.append("- %s (%s): `%s`" % (k, r["error_detail"], r["first_error"].replace("`", "'")[:300]))
    if any(k in results for k in SCIM_SCENARIOS):
        lines += ["", "S5 reports the median and the maximum of %d single timed PATCH requests, each adding "
                  "fresh members to the same group; S1 ran after S2-S4, so S2-S4 saw exactly the seeded users."
                  % meta["s5_reps"]]
    if "api-longpoll" in results and "skipped" not in results["api-longpoll"]:
        lines += ["", "api-longpoll: a consumer follows the whole feed with `GET /api/v1/events?after=N&wait=30"
                  "&limit=1000` while a writer creates one probe user at a time over SCIM (20-80 ms apart). "
                  "Latency is from the probe's 201 reaching the writer to the consumer's long-poll returning "
                  "the page with its `user.created` (0 when the page came first: commit precedes the 201); "
                  "from send is an upper bound on commit-to-consumer (the commit lies between send and 201)."]
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


# ---------------------------------------------------------------------------


def ensure_wrk(install: bool) -> str:
    if shutil.which("wrk"):
        return subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0].strip() or "wrk"
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found: apt-get install -y wrk")
        if subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL, check=True)
        return ensure_wrk(False)
    raise SystemExit("wrk is not installed: apt-get install -y wrk")


def run_one(args, n: int, wrk_version: str) -> str:
    workdir = tempfile.mkdtemp(prefix="dirsync-bench-")
    pg_url = None
    if args.backend == "sqlite":
        db_url = "sqlite://%s/bench.db?mode=rwc" % workdir
    else:
        try:
            db_url = pg_url = pgdb.create(args.database_url, "dirsync_bench")
        except pgdb.PgError as e:
            raise SystemExit("cannot create a PostgreSQL database: %s" % e)
    log("N=%d backend=%s database=%s workdir=%s" % (n, args.backend, db_url, workdir))
    server = Server(args.binary, db_url, workdir, args.rust_log)
    results = {}
    ok = False
    hooks = any(k in args.scenarios for k in WEBHOOK_SCENARIOS)
    receiver = None
    try:
        if hooks:
            server.enable_webhooks()
            receiver = Receiver()
        token = server.provision()
        base = server.start()
        mon = RssMonitor(server.proc.pid)
        mon.start()
        client = Client(base, token)
        base_api = base[:-len("/scim/v2")] + "/api/v1"
        api_token = server.api_token()
        api = Client(base_api, api_token, media="application/json")
        admin = Client(base_api, server.api_token(scope="admin"), media="application/json") if hooks else None
        names = ["bench-user-%07d" % k for k in range(n)]
        supported, max_ops, _ = bulk_settings(client)
        t0 = time.time()
        ids = seed_users(client, names)
        seed_s = time.time() - t0
        log("seeded %d users in %.1f s" % (n, seed_s))
        ids_file = os.path.join(workdir, "ids.txt")
        with open(ids_file, "w") as f:
            f.write("\n".join(ids) + "\n")
        run_id = "%x" % int(time.time())
        load_before = " ".join(open("/proc/loadavg").read().split()[:3])
        log("load average before the scenarios: %s" % load_before)
        for key in RUN_ORDER:
            if key not in args.scenarios:
                continue
            if server.proc.poll() is not None:
                raise RuntimeError("server died; log tail:\n" + server.tail())
            mon.reset()
            log("running %s" % (TITLES[key] if key != "s5" else "S5 PATCH add %d members (group of %d)" % (
                args.s5_add, args.s5_group_size)))
            try:
                if key == "s5":
                    r = run_s5(client, ids, "bench-s5-%s" % run_id, args)
                elif key == "api-users":
                    r = run_wrk(key, base_api, api_token, n, ids_file, args, run_id)
                elif key == "api-users-depth":
                    r = run_users_depth(api, n, args)
                elif key == "api-events":
                    r = run_events(base_api, api, api_token, ids_file, args, run_id)
                elif key == "api-longpoll":
                    r = run_longpoll(client, api, base, token, n, ids_file, args, run_id)
                elif key == "webhooks-throughput":
                    r = run_webhook_throughput(admin, api, receiver, args)
                elif key == "soak":
                    r = run_soak(base, token, n, ids_file, args, run_id, server.proc.pid)
                elif key == "s1-tenants":
                    tokens = ",".join(server.directory_token("bench-t%d" % t) for t in range(args.tenants))
                    r = run_wrk(key, base, tokens, n, ids_file, args, run_id)
                elif key == "webhooks-latency":
                    r = run_webhook_latency(admin, api, receiver, base, token, n, ids_file, args, run_id)
                else:
                    r = run_wrk(key, base, token, n, ids_file, args, run_id)
            except RuntimeError as e:
                log("%s failed: %s" % (key, e))
                r = {"skipped": str(e)[:200].replace("|", "/")}
                results[key] = r
                continue
            r["rss_mib"] = mon.peak_mib()
            results[key] = r
            if "rps" in r and r["rps"] is not None:
                log("%s: %.0f req/s, p50 %.1f ms, p99 %.1f ms, errors %d (%s), peak RSS %.0f MiB" % (
                    key, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], r["error_detail"], r["rss_mib"]))
            if key in API_SCENARIOS:
                log("%s: %s" % (key, api_cell(key, r)))
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "binary": os.path.relpath(args.binary, ROOT) if args.binary.startswith(ROOT + os.sep) else args.binary, "commit": args.commit,
            "wrk": wrk_version, "connections": args.connections, "threads": args.threads,
            "duration": args.duration, "seed_s": seed_s,
            "seed_how": ("/Bulk, %d ops per request" % min(1000, max_ops)) if supported and max_ops else "concurrent POST /Users",
            "hwm_reset": mon.hwm_resettable, "s5_reps": args.s5_reps,
            "s5_add": args.s5_add, "s5_group": args.s5_group_size,
            "command": "python3 bench/run.py " + " ".join(shlex.quote(a) for a in args.argv),
            "load": load_before,
        }
        prefix = {"scim": "results", "api": "results-api", "all": "results-all",
                  "webhooks": "results-webhooks", "soak": "results-soak"}[args.suite]
        out = os.path.join(args.out_dir, "%s-%s-%d.md" % (prefix, args.backend, n))
        text = write_report(out, args.backend, n, results, meta)
        print(text, flush=True)
        log("wrote %s" % out)
        ok = True
        return text
    finally:
        server.stop()
        if receiver:
            receiver.close()
        if not ok:
            log("server log tail:\n" + server.tail())
        if pg_url:
            try:
                pgdb.drop(pg_url)
            except pgdb.PgError as e:
                log("could not drop %s: %s" % (pg_url, e))
        if args.keep or not ok:
            log("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "dirsync"))
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test",
                    help="PostgreSQL URL whose server gets a fresh database per run (postgres backend)")
    ap.add_argument("--users", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk scenario")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--suite", choices=sorted(SUITES), default="scim",
                    help="scim: S1-S5 (default); api: the host API's scenarios; all: both; "
                         "webhooks: delivery throughput and latency under S1 (issue 11)")
    ap.add_argument("--scenarios", default=None,
                    help="comma-separated subset of %s (default: the suite's)" % ",".join(SCENARIOS))
    ap.add_argument("--depth-reps", type=int, default=30,
                    help="api-users-depth: timed requests of the first and of the deep page, each")
    ap.add_argument("--longpoll-samples", type=int, default=200, help="api-longpoll: probes under S1 load")
    ap.add_argument("--longpoll-idle-samples", type=int, default=50, help="api-longpoll: probes without load first")
    ap.add_argument("--longpoll-duration", type=int, default=40,
                    help="api-longpoll: seconds of S1 load (wrk) the probes run under")
    ap.add_argument("--webhook-batch-sizes", default="1,100",
                    help="webhooks: comma-separated batch_size values, one endpoint each (default 1,100)")
    ap.add_argument("--webhook-timeout", type=float, default=300,
                    help="webhooks: seconds to wait for the receiver to have every event")
    ap.add_argument("--tenants", type=int, default=8,
                    help="s1-tenants: tenants (each a directory and token) the POSTs go round")
    ap.add_argument("--s5-group-size", type=int, default=100000)
    ap.add_argument("--s5-add", type=int, default=1000)
    ap.add_argument("--s5-reps", type=int, default=5)
    ap.add_argument("--soak-minutes", type=float, default=10, help="soak: how long the paced mix runs")
    ap.add_argument("--soak-fraction", type=float, default=0.5, help="soak: the paced rate as a share of the peak")
    ap.add_argument("--soak-sample", type=float, default=5, help="soak: seconds between RSS/fd samples")
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--rust-log", default="warn", help="RUST_LOG for the server (request logging costs time)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install wrk when missing")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (database file, server log)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.binary = os.path.abspath(args.binary)
    args.webhook_batch_sizes = [int(b) for b in args.webhook_batch_sizes.split(",") if b.strip()]
    if args.scenarios is None:
        args.scenarios = list(SUITES[args.suite])
    else:
        args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        ap.error("unknown scenarios: %s" % ", ".join(sorted(unknown)))
    if not os.access(args.binary, os.X_OK):
        ap.error("no executable at %s (cargo build --release --bin dirsync)" % args.binary)
    args.commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip() or "no commit"
    wrk_version = ensure_wrk(not args.no_install)
    for n in args.users:
        run_one(args, n, wrk_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
