"""An acknowledged event survives ``kill -9`` of the server: a real uvicorn in a subprocess
takes batches from several threads, is killed mid-ingest, and every messageId it answered 200
for is in the DuckDB file afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.collect.tracking import make_world, stored_in

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"server exited: {server.stderr.read().decode() if server.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SIYU_HOME": str(tmp_path), "SIYU_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "siyu", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=url, headers=world.auth, timeout=10) as http:
            for batch_no in range(10_000):
                if stop.is_set():
                    return
                ids = [f"k-{worker}-{batch_no}-{n}" for n in range(200)]
                batch = [
                    {"type": "track", "messageId": i, "anonymousId": f"a{worker}", "event": "tap"}
                    for i in ids
                ]
                try:
                    response = http.post("/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    return  # the server is gone: this batch was never acknowledged
                if response.status_code == 200 and response.json()["accepted"] == len(ids):
                    with lock:
                        acknowledged.extend(ids)

    try:
        _wait_until_up(url, server)
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(acknowledged) >= 20_000:
                    break
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)  # mid-ingest: the clients are still sending
        server.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    assert len(acknowledged) >= 1_000
    stored_ids = {row["event_id"] for row in stored_in(world.settings)}
    missing = set(acknowledged) - stored_ids
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
