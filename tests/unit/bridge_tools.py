"""Raw HTTP for the bridge tests: what ``urllib`` will not send (negative lengths, endless chunked
bodies, silence), and a tiny HTTP server standing in for SNS's ``SubscribeURL``."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lookalike.events import ObjectEvent
from lookalike.settings import Settings
from producers.bridge import BridgeServer

TOKEN = "s3cret"


def post(url: str, body: bytes, token: str | None = TOKEN, timeout: float = 5) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class RecordingPublisher:
    """Kafka stand-in: records events, or fails the way it is told to; can hold a publish open."""

    topic = "t"

    def __init__(self) -> None:
        self.events: list[ObjectEvent] = []
        self.fail: Exception | None = None
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def publish(self, events: list[ObjectEvent]) -> None:
        self.entered.set()
        assert self.hold.wait(30), "test never released the publisher"
        if self.fail is not None:
            raise self.fail
        self.events.extend(events)

    def close(self) -> None:
        pass


StartBridge = Callable[..., tuple[BridgeServer, RecordingPublisher]]


@contextlib.contextmanager
def bridges() -> Iterator[StartBridge]:
    """Starts bridges with settings overrides (port 0: the kernel picks); all stopped on the way out."""
    servers: list[BridgeServer] = []

    def start(**overrides: object) -> tuple[BridgeServer, RecordingPublisher]:
        options: dict[str, object] = {"bridge_port": 0, "bridge_token": TOKEN, "bridge_max_body": 4096}
        options.update(overrides)
        settings = Settings(_env_file=None, **options)  # type: ignore[arg-type]
        pub = RecordingPublisher()
        server = BridgeServer(settings, pub)
        servers.append(server)
        server.start()
        return server, pub

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def raw_exchange(
    port: int, first: bytes, more: Iterable[bytes] = (), wait: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``first`` then each of ``more`` (stopping if the server hangs up), then read one response
    within ``wait`` seconds: (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            sock.sendall(first)
            for part in more:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; its answer is read below
        return read_response(sock, wait)


def read_response(sock: socket.socket, wait: float) -> tuple[int, dict[str, str], bytes]:
    deadline = time.monotonic() + wait
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not got:
            break
        data += got
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            headers = parse_headers(head)
            if "content-length" in headers and len(body) >= int(headers["content-length"]):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), f"no HTTP response within {wait} s: {data[:200]!r}"
    return int(head.split()[1]), parse_headers(head), body


def parse_headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """Whether the other side closes ``sock`` within ``wait`` seconds (EOF or reset); whatever it
    sends before that (a response) is read and dropped."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


class SubscribeEndpoint:
    """Answers GETs with ``status`` (and ``location`` for redirects) and records each path asked."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.status = status
        self.location = location
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/confirm?Token=abc"

    @contextlib.contextmanager
    def running(self) -> Iterator[SubscribeEndpoint]:
        thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)
