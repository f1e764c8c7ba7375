#!/usr/bin/env python3
"""Instructions of N SCIM creates (S1's request) through one dirsync server, counted by
valgrind's callgrind: a figure that does not move with the machine's load, for changes
too small for wrk on a shared VM to tell apart (README, "SCIM request log").

    cargo build --release --bin dirsync
    python3 bench/callgrind_s1.py target/release/dirsync 3000 /tmp/on.out      # log on
    python3 bench/callgrind_s1.py target/release/dirsync 3000 /tmp/off.out 0   # log off

Starts the server on a fresh SQLite file under callgrind, creates a tenant, a SCIM
directory and its token with the CLI, sends N POST /Users from four clients, stops the
server (SIGTERM: the request log's queue is written before it exits) and prints the
total instructions; `callgrind_annotate OUT` shows where they went. The optional last
argument is DIRSYNC_SCIM_LOG_KEEP (0: the request log off). Needs valgrind.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import user_body  # noqa: E402  S1's body, as run.py sends it

CLIENTS = 4


def main() -> None:
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    binary, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    work = tempfile.mkdtemp(prefix="callgrind-s1-")
    db = "sqlite://%s/dirsync.db?mode=rwc" % work
    env = dict(os.environ, RUST_LOG="warn")
    if len(sys.argv) == 5:
        env["DIRSYNC_SCIM_LOG_KEEP"] = sys.argv[4]

    def cli(*args) -> dict:
        done = subprocess.run([binary, "--database-url", db, *args], capture_output=True, text=True,
                              env=env, check=True)
        return json.loads(done.stdout) if done.stdout.strip() else {}

    subprocess.run([binary, "--database-url", db, "migrate"], capture_output=True, env=env, check=True)
    cli("tenant", "create", "callgrind", "--json")
    directory = cli("directory", "create", "--tenant", "callgrind", "--name", "s1", "--vendor", "generic",
                    "--json")
    token = cli("token", "create", "--directory", directory["id"], "--json")["token"]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    listen = "127.0.0.1:%d" % port
    log = open(os.path.join(work, "server.log"), "wb")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary, "--database-url", db,
         "serve", "--listen", listen, "--public-url", "http://" + listen],
        stdout=log, stderr=log, env=env)
    wait_ready(server, port, work)

    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"}

    def client(first: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for k in range(first, n, CLIENTS):
            conn.request("POST", "/scim/v2/Users", json.dumps(user_body("s1-%d" % k, k)), headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError("POST /Users answered %d" % response.status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.send_signal(signal.SIGTERM)
    server.wait(300)
    summary = subprocess.run(["callgrind_annotate", "--auto=no", out], capture_output=True, text=True).stdout
    print(next(line.strip() for line in summary.splitlines() if "PROGRAM TOTALS" in line))


def wait_ready(server: subprocess.Popen, port: int, work: str) -> None:
    """Until the server answers (callgrind starts it slowly)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit("the server exited; see %s/server.log" % work)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/scim/v2/ServiceProviderConfig")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    sys.exit("the server was not ready after 300 s; see %s/server.log" % work)


if __name__ == "__main__":
    main()
