"""Conformance suite `webhooks` (conformance/run.sh): dirsync's deliveries,
checked by independent implementations of the Standard Webhooks
specification, the official `standardwebhooks` packages from PyPI (the
receiver, conformance/webhook_receiver.py) and npm
(conformance/webhooks-node/verify.mjs, over the recorded deliveries).

    python webhooks.py --dirsync BIN --database-url URL --tenant T \\
        --scim-base URL --node-dir DIR --work DIR     (SCIM_TOKEN in the environment)

The server must be running with webhook delivery on (`serve`'s default),
DIRSYNC_WEBHOOK_ALLOW_HTTP_LOOPBACK=true, short retries
(DIRSYNC_WEBHOOK_RETRIES=200ms,200ms,200ms) and DIRSYNC_SECRET_KEY, which
this process's environment carries to the CLI too. Phases:

1. register an endpoint with the CLI, send `webhook test`, write users and a
   group through SCIM: every event of the feed after the endpoint's start
   arrives, verified, in sequence order, its body equal to the feed's event;
2. the receiver answers 500 twice, then recovers: the same event comes
   again after the short retry, nothing is lost, the order holds, the
   attempts log shows both failures;
3. `webhook rotate-secret`: the next deliveries carry two signatures and
   verify with the new secret alone and with the old one alone;
4. Node: the recorded deliveries verify with the README's Node line, and a
   tampered one does not.

Prints one line per check and ends with `webhooks: N passed, M failed`;
exits 1 when a check failed.
"""

import argparse
import base64
import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from standardwebhooks.webhooks import WebhookVerificationError

from webhook_receiver import Receiver, verify

WAIT_SECONDS = 60


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def __call__(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f": {detail}" if detail else ""))
        sys.stdout.flush()
        return ok


class Dirsync:
    """The CLI against the run's database."""

    def __init__(self, binary: str, database_url: str) -> None:
        self.binary = binary
        self.database_url = database_url

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [self.binary, "--database-url", self.database_url, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dirsync {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json"))

    def events(self, tenant: str, after: int) -> list:
        out = []
        while True:
            page = self.json("events", "--tenant", tenant, "--after", str(after), "--limit", "10000")
            if not page:
                return out
            out.extend(page)
            after = page[-1]["seq"]


class Scim:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def send(self, method: str, path: str, body: dict) -> dict:
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/scim+json"},
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            raw = res.read()
        return json.loads(raw) if raw else {}

    def create_user(self, name: str, given: str, family: str) -> str:
        return self.send("POST", "/Users", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "emails": [{"value": name, "primary": True}],
            "name": {"givenName": given, "familyName": family},
            "active": True,
        })["id"]

    def create_group(self, name: str, members: list) -> str:
        return self.send("POST", "/Groups", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m} for m in members],
        })["id"]

    def patch(self, path: str, operations: list) -> None:
        self.send("PATCH", path, {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        })


def wait_until(what: str, predicate, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


def event_deliveries(deliveries: list) -> list:
    """The deliveries of feed events (not `webhook test` messages)."""
    return [d for d in deliveries if d.webhook_id.startswith("evt_")]


def caught_up(receiver: Receiver, cli: Dirsync, tenant: str, start: int, endpoint_id: str) -> list:
    """Wait until every event of the feed after `start` was taken and the
    endpoint's position says so; the feed then."""

    def done():
        feed = cli.events(tenant, start)
        taken = {d.webhook_id for d in receiver.snapshot() if d.accepted}
        if feed and all(e["id"] in taken for e in feed):
            show = cli.json("webhook", "show", endpoint_id)
            if show["delivered_seq"] == feed[-1]["seq"]:
                return feed
        return None

    try:
        return wait_until("every event of the feed to be delivered", done)
    except TimeoutError as err:
        feed = cli.events(tenant, start)
        show = cli.json("webhook", "show", endpoint_id)
        got = receiver.snapshot()
        raise TimeoutError(
            f"{err}: the feed ends at seq {feed[-1]['seq'] if feed else start}; the endpoint: "
            + json.dumps({k: show.get(k) for k in ("enabled", "disabled_reason", "failures", "delivered_seq")})
            + f"; the receiver got {len(got)} requests, the last answered {got[-1].status if got else None}"
        ) from None


def check_feed_delivered(check: Checks, label: str, feed: list, deliveries: list) -> None:
    """Every event of `feed` arrived, taken first in sequence order, each
    delivery of it the same bytes, its body the feed's event."""
    mine = [d for d in event_deliveries(deliveries) if d.webhook_id in {e["id"] for e in feed}]
    by_id = {}
    for d in mine:
        by_id.setdefault(d.webhook_id, []).append(d)
    missing = [e["id"] for e in feed if not any(d.accepted for d in by_id.get(e["id"], []))]
    check(not missing, f"{label}: each of the feed's {len(feed)} events was taken", f"missing {missing}")
    first_taken = []
    for d in mine:
        if d.accepted and d.webhook_id not in first_taken:
            first_taken.append(d.webhook_id)
    check(
        first_taken == [e["id"] for e in feed if e["id"] in first_taken],
        f"{label}: taken in sequence order",
        f"order {first_taken}",
    )
    # An event goes only once its predecessor was taken: nothing of a later
    # event arrives before the earlier one's 2xx.
    position = {e["id"]: i for i, e in enumerate(feed)}
    highest_taken = -1
    early = []
    for d in mine:
        if position[d.webhook_id] > highest_taken + 1:
            early.append(d.webhook_id)
        if d.accepted:
            highest_taken = max(highest_taken, position[d.webhook_id])
    check(not early, f"{label}: no event sent before the one before it was taken", f"{early}")
    differing = [i for i, ds in by_id.items() if len({d.body for d in ds}) != 1]
    check(not differing, f"{label}: every repeat of an event carries the same webhook-id and the same bytes", f"{differing}")
    wrong = []
    for e in feed:
        for d in by_id.get(e["id"], []):
            if json.loads(d.body) != e:
                wrong.append(e["id"])
    check(not wrong, f"{label}: each body equals the feed's event (dirsync events --json)", f"{wrong}")
    bad_headers = [
        d.webhook_id
        for d in mine
        if d.path != "/hook"
        or not d.headers.get("content-type", "").startswith("application/json")
        or json.loads(d.body).get("id") != d.webhook_id
        or not d.headers.get("webhook-timestamp", "").isdigit()
    ]
    check(not bad_headers, f"{label}: POST /hook, application/json, webhook-id = the event's id, webhook-timestamp in seconds", f"{bad_headers}")


def check_verified(check: Checks, label: str, deliveries: list, names: list) -> None:
    refused = [
        (d.webhook_id, name, d.verified.get(name, "not tried"))
        for d in deliveries
        for name in names
        if d.verified.get(name, "not tried") is not None
    ]
    check(
        bool(deliveries) and not refused,
        f"{label}: all {len(deliveries)} deliveries verified by Python standardwebhooks with "
        + " and with ".join(f"the {n} secret alone" for n in names),
        f"{refused[:5]}",
    )


def node_verify(node_dir: Path, work: Path, name: str, deliveries: list, secret: str) -> tuple:
    path = work / f"webhooks-{name}.json"
    path.write_text(json.dumps([
        {"headers": d.headers, "body_base64": base64.b64encode(d.body).decode()} for d in deliveries
    ], indent=1))
    done = subprocess.run(
        ["node", str(node_dir / "verify.mjs"), str(path), secret],
        capture_output=True, text=True, timeout=60,
    )
    output = (done.stdout + done.stderr).strip()
    print(output)
    return done.returncode, output


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dirsync", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--scim-base", required=True)
    p.add_argument("--node-dir", required=True, type=Path)
    p.add_argument("--work", required=True, type=Path)
    args = p.parse_args()

    check = Checks()
    try:
        run(args, check)
    except Exception as err:  # a phase that could not go on fails the suite, never skips
        check(False, "the run went through", f"{type(err).__name__}: {err}")
    print(f"webhooks: {check.passed} passed, {check.failed} failed")
    return 0 if check.failed == 0 else 1


def run(args: argparse.Namespace, check: Checks) -> None:
    cli = Dirsync(args.dirsync, args.database_url)
    # The token comes through the environment, never a command line.
    scim = Scim(args.scim_base, os.environ["SCIM_TOKEN"])

    with Receiver() as receiver:
        # ---- 1. register; deliveries verify; order; bodies ---------------
        created = cli.json(
            "webhook", "create", "--tenant", args.tenant, "--url", receiver.url,
            "--webhook-allow-http-loopback", "true",
        )
        endpoint_id, old_secret, start = created["id"], created["secret"], created["delivered_seq"]
        check(old_secret.startswith("whsec_"), "the secret is whsec_ + base64", old_secret[:6])
        receiver.use_secrets(old=old_secret)
        print(f"endpoint {endpoint_id} -> {receiver.url}, starting after seq {start}")

        test = cli.run("webhook", "test", endpoint_id)
        tests = [d for d in receiver.snapshot() if d.webhook_id.startswith("test_")]
        check(
            test.startswith("delivered") and len(tests) == 1 and tests[0].accepted
            and json.loads(tests[0].body).get("type") == "webhook.test",
            "dirsync webhook test: a webhook.test message, verified", test.strip(),
        )

        alice = scim.create_user("alice@example.com", "Alice", "Liddell")
        bob = scim.create_user("bob@example.com", "Bob", "Builder")
        # Not ASCII: the signature is over the body's UTF-8 bytes.
        zoe = scim.create_user("zoe@example.com", "Zoë", "Ångström-Øre")
        group = scim.create_group("Wonderland", [alice, bob])
        scim.patch(f"/Groups/{group}", [{"op": "add", "path": "members", "value": [{"value": zoe}]}])
        scim.patch(f"/Users/{bob}", [{"op": "replace", "path": "active", "value": False}])
        scim.patch(f"/Users/{alice}", [{"op": "replace", "path": "displayName", "value": "Alice L."}])

        feed1 = caught_up(receiver, cli, args.tenant, start, endpoint_id)
        phase1 = event_deliveries(receiver.snapshot())
        types = {e["type"] for e in feed1}
        check(
            {"user.created", "group.created", "group.member_added", "user.deactivated", "user.updated"} <= types,
            f"phase 1: the feed has {len(feed1)} events of {len(types)} types after seq {start}",
            f"{sorted(types)}",
        )
        check_feed_delivered(check, "phase 1", feed1, phase1)
        check_verified(check, "phase 1", phase1 + tests, ["old"])
        check(
            any("Zoë".encode() in d.body for d in phase1),
            "phase 1: a body with non-ASCII text arrived as UTF-8 and verified",
        )

        # Harness self-check: the library the receiver uses refuses forgeries.
        sample = phase1[0]
        forged = [
            ("a changed body", sample.body + b" ", sample.headers),
            ("another secret", sample.body, sample.headers, "whsec_" + base64.b64encode(b"x" * 32).decode()),
            ("a changed webhook-id", sample.body, {**sample.headers, "webhook-id": "evt_forged"}),
            ("a stale timestamp", sample.body, {**sample.headers, "webhook-timestamp": str(int(time.time()) - 600)}),
        ]
        refused = []
        for case in forged:
            what, body, headers = case[:3]
            secret = case[3] if len(case) > 3 else old_secret
            try:
                verify(secret, body, headers)
            except WebhookVerificationError:
                refused.append(what)
        check(
            len(refused) == len(forged),
            "the Python library refuses " + ", ".join(c[0] for c in forged),
            f"refused only {refused}",
        )

        # ---- 2. the receiver fails twice, then recovers -------------------
        seen = len(receiver.snapshot())
        receiver.fail_next(2)
        carol = scim.create_user("carol@example.com", "Carol", "Danvers")
        scim.patch(f"/Groups/{group}", [{"op": "add", "path": "members", "value": [{"value": carol}]}])
        scim.create_user("dave@example.com", "Dave", "Lister")
        scim.patch(f"/Users/{zoe}", [{"op": "replace", "path": "active", "value": False}])

        feed2 = caught_up(receiver, cli, args.tenant, feed1[-1]["seq"], endpoint_id)
        phase2 = event_deliveries(receiver.snapshot()[seen:])
        failures = [d for d in phase2 if d.status == 500]
        check(
            len(failures) == 2 and {d.webhook_id for d in failures} == {feed2[0]["id"]},
            "phase 2: the receiver's two 500s were both for the first new event",
            f"{[(d.webhook_id, d.status) for d in phase2[:4]]}",
        )
        retried = [d for d in phase2 if d.webhook_id == feed2[0]["id"]]
        gaps = [round(b.received_at - a.received_at, 3) for a, b in zip(retried, retried[1:])]
        check(
            len(retried) == 3 and retried[-1].accepted and all(g >= 0.15 for g in gaps),
            "phase 2: retried after DIRSYNC_WEBHOOK_RETRIES' 200 ms (less a fifth) and taken on the third attempt",
            f"{len(retried)} attempts, gaps {gaps} s",
        )
        check_feed_delivered(check, "phase 2", feed2, phase2)
        check_verified(check, "phase 2", phase2, ["old"])
        attempts = cli.json("webhook", "attempts", endpoint_id, "--limit", "100")
        failed = [a for a in attempts if a.get("status") == 500]
        check(
            len(failed) == 2 and all(a.get("outcome") == "failed" for a in failed),
            "phase 2: dirsync webhook attempts logs the two 500s as failed",
            json.dumps(failed)[:300],
        )
        shown = cli.json("webhook", "show", endpoint_id)
        check(
            shown["enabled"] and shown["failures"] == 0 and shown["delivered_seq"] == feed2[-1]["seq"],
            "phase 2: the endpoint is enabled again with no failures, through the last event",
            json.dumps({k: shown[k] for k in ("enabled", "failures", "delivered_seq", "disabled_reason")}),
        )

        # ---- 3. rotation: both secrets sign ----------------------------
        rotated = cli.run("webhook", "rotate-secret", endpoint_id).splitlines()
        new_secret = rotated[1].rsplit(" ", 1)[-1] if len(rotated) > 1 else ""
        check(
            new_secret.startswith("whsec_") and new_secret != old_secret,
            "rotate-secret prints a new whsec_ secret on its second line",
            "\n".join(line[:60] for line in rotated),
        )
        receiver.use_secrets(new=new_secret, old=old_secret)
        seen = len(receiver.snapshot())
        erin = scim.create_user("erin@example.com", "Erin", "Brockovich")
        scim.patch(f"/Groups/{group}", [{"op": "remove", "path": f'members[value eq "{bob}"]'}])
        scim.patch(f"/Users/{erin}", [{"op": "replace", "path": "displayName", "value": "Erin B."}])

        feed3 = caught_up(receiver, cli, args.tenant, feed2[-1]["seq"], endpoint_id)
        phase3 = event_deliveries(receiver.snapshot()[seen:])
        check_feed_delivered(check, "phase 3", feed3, phase3)
        check_verified(check, "phase 3", phase3, ["new", "old"])
        two = [d for d in phase3 if len(d.headers.get("webhook-signature", "").split(" ")) != 2]
        check(not two, "phase 3: webhook-signature carries two v1 signatures, space-separated", f"{[d.webhook_id for d in two]}")

        everything = cli.events(args.tenant, start)
        delivered = event_deliveries(receiver.snapshot())
        unknown = sorted({d.webhook_id for d in delivered} - {e["id"] for e in everything})
        check(not unknown, "no delivery of an event the feed does not have (or had before the start)", f"{unknown}")
        check_feed_delivered(check, "all phases", everything, delivered)

    # ---- 4. Node: the README's line over the recorded deliveries ---------
    before = tests + phase1 + phase2
    rc, out = node_verify(args.node_dir, args.work, "old", before, old_secret)
    check(rc == 0, f"node: {len(before)} deliveries before the rotation verify with the old secret", out)
    rc, out = node_verify(args.node_dir, args.work, "rotated-new", phase3, new_secret)
    check(rc == 0, f"node: {len(phase3)} deliveries after the rotation verify with the new secret alone", out)
    rc, out = node_verify(args.node_dir, args.work, "rotated-old", phase3, old_secret)
    check(rc == 0, f"node: the same verify with the old secret alone", out)
    rc, out = node_verify(args.node_dir, args.work, "before-new", [d for d in phase1 if d.accepted][:1], new_secret)
    check(rc == 1, "node: a delivery from before the rotation does not verify with the new secret", out)
    tampered = phase1[0]
    tampered = dataclasses.replace(tampered, body=tampered.body + b" ")
    rc, out = node_verify(args.node_dir, args.work, "tampered", [tampered], old_secret)
    check(rc == 1, "node: a tampered body does not verify", out)


if __name__ == "__main__":
    sys.exit(main())
