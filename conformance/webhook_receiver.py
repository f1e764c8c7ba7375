"""A webhook receiver for the conformance suite `webhooks` (conformance/webhooks.py):
the standard library's http.server on 127.0.0.1, port 0, verifying every
delivery with the official Standard Webhooks library from PyPI
(`standardwebhooks`, pinned in conformance/requirements-webhooks.txt), exactly
as the README tells a receiver to:

    from standardwebhooks.webhooks import Webhook
    event = Webhook(SECRET).verify(request.body, request.headers)

It records every request (headers, raw body, what it answered, which secret
verified it) and can be told to answer 500 to the next N requests.
"""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    """One request as it arrived and as it was answered."""

    index: int
    received_at: float
    path: str
    # Lower-cased names, as Node's `req.headers` has them.
    headers: dict
    body: bytes
    status: int = 0
    # Secret name -> None when `Webhook(secret).verify` accepted the request
    # alone, else why it refused.
    verified: dict = field(default_factory=dict)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def verify(secret: str, body: bytes, headers) -> object:
    """The README's Python line, verbatim in effect: the event, or an exception."""
    return Webhook(secret).verify(body, headers)


class Receiver:
    """Verifies each request with every secret it is given (each alone) and
    answers 204 when all of them accept it, 400 when one does not, and 500
    while told to fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict = {}
        self._fail_next = 0
        self.deliveries: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                receiver._handle(self)

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def use_secrets(self, **secrets: str) -> None:
        """From now on each request must verify with each of these alone."""
        with self._lock:
            self._secrets = dict(secrets)

    def fail_next(self, n: int) -> None:
        """Answer 500 to the next `n` requests (after verifying and recording them)."""
        with self._lock:
            self._fail_next = n

    def snapshot(self) -> list:
        with self._lock:
            return list(self.deliveries)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length)
        with self._lock:
            secrets = dict(self._secrets)
            failing = self._fail_next > 0
            if failing:
                self._fail_next -= 1
            delivery = Delivery(
                index=len(self.deliveries),
                received_at=time.monotonic(),
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        for name, secret in secrets.items():
            try:
                # request.headers is the http.server message itself, as a
                # framework hands it over: the library lower-cases names.
                verify(secret, body, request.headers)
                delivery.verified[name] = None
            except (WebhookVerificationError, ValueError) as err:
                delivery.verified[name] = f"{type(err).__name__}: {err}"
        if failing:
            delivery.status = 500
        elif not secrets or any(v is not None for v in delivery.verified.values()):
            delivery.status = 400
        else:
            delivery.status = 204
        with self._lock:
            self.deliveries.append(delivery)
        request.send_response(delivery.status)
        request.send_header("content-length", "0")
        request.end_headers()
