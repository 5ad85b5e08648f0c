"""Live servers for the snippet tests: the real app under uvicorn in a thread, a page server on
another port (so the snippet posts cross-origin), and a proxy that can fail on purpose."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn

from siyu.api import create_app
from siyu.core.config import Settings

HOP_BY_HOP = {"connection", "content-length", "content-encoding", "transfer-encoding", "host"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving_app(settings: Settings) -> Iterator[str]:
    """The real app on a free port; stopped (stores closed) when the block ends."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def serving_page(app_url: str) -> Iterator[str]:
    """A page (any path, any query) that loads the snippet from the app."""
    html = (
        '<!doctype html><meta charset="utf-8"><title>618 活动页</title>'
        f'<script src="{app_url}/v1/static/siyu.js"></script><p>shop</p>'
    ).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    with _serving(Page) as url:
        yield url


@dataclass
class Seen:
    """One POST the proxy saw: how it was authenticated, what it did, what the app said."""

    authorization: bool
    content_type: str
    action: str
    status: int
    answer: dict[str, Any] | None = None


@dataclass
class Proxy:
    """Forwards to the app. Each POST takes the next action of ``plan`` (then ``default``):
    ``pass``; ``drop`` (answer 503, forward nothing); ``lose-ack`` (forward, so the app stores
    the events, then answer 503 as if the answer had been lost)."""

    target: str
    plan: list[str] = field(default_factory=list)
    default: str = "pass"
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self) -> str:
        with self.lock:
            return self.plan.pop(0) if self.plan else self.default

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def wait_for(self, predicate: Any, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(predicate(seen) for seen in self.seen):
                    return
            time.sleep(0.05)
        raise AssertionError(f"the proxy never saw the request; it saw {self.seen}")


@contextmanager
def serving_proxy(target: str, plan: list[str] | None = None) -> Iterator[tuple[str, Proxy]]:
    proxy = Proxy(target=target, plan=list(plan or []))

    class Handler(BaseHTTPRequestHandler):
        def _forward(self, method: str, body: bytes | None) -> httpx.Response:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            return httpx.request(
                method, proxy.target + self.path, headers=headers, content=body, timeout=30
            )

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:
            response = self._forward("OPTIONS", None)
            self._answer(response.status_code, dict(response.headers), response.content)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            action = proxy.next_action()
            seen = Seen(
                authorization="authorization" in {k.lower() for k in self.headers},
                content_type=self.headers.get("Content-Type", ""),
                action=action,
                status=503,
            )
            if action != "drop":
                response = self._forward("POST", body)
                seen.answer = json.loads(response.content) if response.content else None
                if action == "pass":
                    seen.status = response.status_code
                    proxy.record(seen)
                    self._answer(response.status_code, dict(response.headers), response.content)
                    return
            proxy.record(seen)
            self._answer(503, {"Access-Control-Allow-Origin": "*"}, b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    with _serving(Handler) as url:
        yield url, proxy
