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


class PgError(RuntimeError):
    pass


def check(url: str) -> None:
    r = psql(url, "select 1")
    if r.returncode != 0 or r.stdout.strip() != "1":
        raise PgError("cannot reach PostgreSQL at %s: %s" % (url, r.stderr.strip()))


def create(url: str, prefix: str = "dirsync_tmp") -> str:
    """Creates a uniquely named database on the server of `url`; returns its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise PgError("bad prefix %r" % prefix)
    name = "%s_%d_%s" % (prefix, os.getpid(), secrets.token_hex(4))
    r = psql(url, 'CREATE DATABASE "%s"' % name)
    if r.returncode != 0:
        raise PgError("CREATE DATABASE failed: %s" % r.stderr.strip())
    return with_database(url, name)


def drop(url: str) -> None:
    name = database_of(url)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name) or name in ("postgres", "test", "root", "template0", "template1"):
        raise PgError("refusing to drop %r" % name)
    r = psql(with_database(url, "postgres"), 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    if r.returncode != 0:
        raise PgError("DROP DATABASE failed: %s" % r.stderr.strip())


def main(argv) -> int:
    if len(argv) < 2 or argv[0] not in ("check", "create", "drop"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "check":
            check(argv[1])
        elif argv[0] == "create":
            print(create(argv[1], *(argv[2:3])))
        else:
            drop(argv[1])
    except PgError as e:
        print("pgdb: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
