#!/usr/bin/env python3
"""Create or drop a throw-away PostgreSQL database next to the one a URL names.

    python3 conformance/pgdb.py check  postgres://postgres@127.0.0.1:5432/test
    python3 conformance/pgdb.py create postgres://postgres@127.0.0.1:5432/test [PREFIX]
        -> prints postgres://postgres@127.0.0.1:5432/PREFIX_<random>
    python3 conformance/pgdb.py drop   postgres://postgres@127.0.0.1:5432/PREFIX_<random>

Uses the `psql` client (standard library only otherwise); the admin connection goes to
the database the URL names (`test` on CI), so that database must exist.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.parse


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def database_of(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def psql(url: str, sql: str, timeout: float = 30) -> subprocess.CompletedProcess:
    if shutil.which("psql") is None:
        raise SystemExit("pgdb: the psql client is not installed (apt-get install -y postgresql-client)")
    # psql understands postgres:// URIs; drop query options it does not (e.g. sea-orm's)
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    libpq_keys = {"sslmode", "connect_timeout", "application_name", "options", "host", "port", "user", "password"}
    conn = urllib.parse.urlunsplit(
        parts._replace(scheme="postgresql", query=urllib.parse.urlencode([(k, v) for k, v in query if k in libpq_keys]))
    )
    env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    return subprocess.run(
        ["psql", conn, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-t", "-A", "-c", sql],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def check(url: str) -> int:
    r = psql(url, "select 1")
    if r.returncode != 0 or r.stdout.strip() != "1":
        print("pgdb: cannot reach PostgreSQL at %s: %s" % (url, r.stderr.strip()), file=sys.stderr)
        return 1
    return 0


def create(url: str, prefix: str = "dirsync_tmp") -> int:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise SystemExit("pgdb: bad prefix %r" % prefix)
    name = "%s_%d_%s" % (prefix, os.getpid(), secrets.token_hex(4))
    r = psql(url, 'CREATE DATABASE "%s"' % name)
    if r.returncode != 0:
        print("pgdb: CREATE DATABASE failed: %s" % r.stderr.strip(), file=sys.stderr)
        return 1
    print(with_database(url, name))
    return 0


def drop(url: str) -> int:
    name = database_of(url)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name) or name in ("postgres", "test", "template0", "template1"):
        raise SystemExit("pgdb: refusing to drop %r" % name)
    admin = with_database(url, "postgres")
    r = psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    if r.returncode != 0:
        print("pgdb: DROP DATABASE failed: %s" % r.stderr.strip(), file=sys.stderr)
        return 1
    return 0


def main(argv) -> int:
    if len(argv) < 2 or argv[0] not in ("check", "create", "drop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "check":
        return check(argv[1])
    if argv[0] == "create":
        return create(argv[1], *(argv[2:3]))
    return drop(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
