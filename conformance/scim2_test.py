"""`scim2 --url BASE test`, as conformance/.venv/bin/scim2 runs it, but with a
per-request timeout of 60 s instead of httpx2's 5 s default (scim2-cli has no
option for it): a busy CI machine that stalls the server for a few seconds is
not a conformance failure."""

import functools
import sys

import httpx2
import scim2_cli.session

scim2_cli.session.Client = functools.partial(httpx2.Client, timeout=httpx2.Timeout(60.0))

from scim2_cli import cli  # noqa: E402

sys.exit(cli())
