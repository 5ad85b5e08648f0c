"""HTTP ingest throughput: 8 concurrent clients POST /v1/batch (500 events each) on loopback
to a real uvicorn server (``python -m siyu serve``, embedded SQLite + DuckDB) for a fixed time.

Reported: events/s acknowledged, p50/p99 batch latency, and zero loss (events in the store
after the run == events acknowledged). Baseline, in the same run: a raw DuckDB Arrow insert of
the same events in batches of the same size (no HTTP, JSON, validation or dedup).
Target (full): at least 100,000 events/s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import psutil
import pyarrow as pa

from bench.harness import Result, Scale, Stopwatch, Target, per_second, progress, record
from siyu.collect import service as sources
from siyu.collect.ingest import prepare
from siyu.collect.messages import Envelope
from siyu.collect.models import SourceCreate
from siyu.core.config import load_settings
from siyu.events import open_event_store
from siyu.events.duckdb.store import events_ddl
from siyu.store import open_database
from siyu.store.migrate import upgrade

NAME = "ingest"
DURATION_S: dict[Scale, float] = {"small": 10.0, "full": 60.0}
CLIENTS = 8
BATCH = 500
TARGET_EVENTS_PER_S = 100_000.0
_SEQ = "SEQ#########"  # replaced per request by a 12-character sequence number


def _message(worker: int, n: int) -> dict[str, Any]:
    kind = n % 10
    base: dict[str, Any] = {
        "messageId": f"w{worker:02d}-{_SEQ}-{n:03d}",
        "anonymousId": f"anon-{worker}-{n % 37}",
        "timestamp": "2025-06-01T12:00:00.000Z",
        "context": {"ip": "10.0.0.1", "campaign": {"source": "moments", "name": "双11预热"}},
    }
    if kind < 6:
        return base | {
            "type": "track",
            "event": "product_view",
            "properties": {"sku": f"SKU-{n}", "title": "玫瑰精华面霜 50ml"},
        }
    if kind < 8:
        return base | {
            "type": "page",
            "name": "商品详情",
            "properties": {"url": f"https://shop.example/p/{n}"},
        }
    if kind < 9:
        return base | {
            "type": "identify",
            "userId": f"M{worker:02d}{n:04d}",
            "traits": {"phone": "13800138000", "level": "gold"},
        }
    return base | {
        "type": "track",
        "userId": f"M{worker:02d}{n:04d}",
        "event": "Order Completed",
        "properties": {
            "order_id": f"o-{worker}-{n}",
            "total": 199.5,
            "currency": "CNY",
            "quantity": 1,
        },
    }


def _template(worker: int) -> bytes:
    body = {
        "batch": [_message(worker, n) for n in range(BATCH)],
        "sentAt": "2025-06-01T12:00:01.000Z",
    }
    return json.dumps(body, ensure_ascii=False).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _home(directory: Path) -> tuple[Any, str]:
    settings = load_settings(home=directory)
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    with database.unit_of_work() as db_session:
        _, key = sources.create(db_session=db_session, source_in=SourceCreate(name="bench"))
    database.dispose()
    return settings, key


def _http_run(directory: Path, duration: float) -> dict[str, Any]:
    settings, key = _home(directory)
    port = _free_port()
    env = {**os.environ, "SIYU_HOME": str(directory), "SIYU_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "siyu", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    templates = [_template(worker) for worker in range(CLIENTS)]
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    acked = [0] * CLIENTS
    failures = [0] * CLIENTS
    start = threading.Barrier(CLIENTS + 1)
    stop_at = [0.0]

    def client(worker: int) -> None:
        auth = httpx.BasicAuth(key, "")
        headers = {"Content-Type": "application/json"}
        with httpx.Client(base_url=url, auth=auth, timeout=60) as http:
            start.wait()
            seq = 0
            while time.perf_counter() < stop_at[0]:
                body = templates[worker].replace(_SEQ.encode(), f"{seq:012d}".encode())
                seq += 1
                began = time.perf_counter()
                response = http.post("/v1/batch", content=body, headers=headers)
                latencies[worker].append(time.perf_counter() - began)
                if response.status_code == 200:
                    answer = response.json()
                    acked[worker] += answer["accepted"]
                    failures[worker] += len(answer["rejected"])
                else:
                    failures[worker] += BATCH

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + duration + 0.0
    serving = psutil.Process(server.pid)
    server_cpu = _cpu_seconds(serving.cpu_times())
    client_cpu = _cpu_seconds(psutil.Process().cpu_times())
    with Stopwatch() as watch:
        start.wait()
        for thread in threads:
            thread.join()
    # Client and server share the machine's cores: say how much CPU each side used.
    server_cpu = _cpu_seconds(serving.cpu_times()) - server_cpu
    client_cpu = _cpu_seconds(psutil.Process().cpu_times()) - client_cpu
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    with open_event_store(settings.resolved_events_url, read_only=True) as events:
        in_store = events.count()
    all_latencies = np.array([value for worker in latencies for value in worker])
    total = sum(acked)
    return {
        "seconds": watch.seconds,
        "acknowledged": total,
        "in_store": in_store,
        "lost": total - in_store,
        "refused": sum(failures),
        "requests": int(all_latencies.size),
        "events_per_s": per_second(total, watch.seconds),
        "p50_ms": float(np.percentile(all_latencies, 50) * 1000),
        "p99_ms": float(np.percentile(all_latencies, 99) * 1000),
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "server_cpu_us_per_event": server_cpu / total * 1e6 if total else None,
        "client_cpu_us_per_event": client_cpu / total * 1e6 if total else None,
    }


def _cpu_seconds(times: Any) -> float:
    return float(times.user + times.system)


def _raw_run(directory: Path, events: int) -> dict[str, Any]:
    """The same events (same rows siyu stores), Arrow-inserted into DuckDB 500 at a time."""
    received = datetime.now(UTC)
    envelope = Envelope(user_id_type="member_no", source_id="src_bench", received_at=received)
    tables = []
    batches = max(1, events // BATCH)
    for index in range(batches):
        worker = index % CLIENTS
        body = json.loads(_template(worker).replace(_SEQ.encode(), f"{index:012d}".encode()))
        tables.append(prepare(body["batch"], envelope, forced_type=None).table)
    connection = duckdb.connect(str(directory / "raw.duckdb"))
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(events_ddl())
    with Stopwatch() as watch:
        for table in tables:
            connection.register("b", table)
            connection.execute("INSERT INTO events SELECT * FROM b")
            connection.unregister("b")
    connection.close()
    rows = sum(table.num_rows for table in tables)
    return {
        "events": rows,
        "seconds": watch.seconds,
        "events_per_s": per_second(rows, watch.seconds),
    }


def run(scale: Scale) -> Result:
    duration = DURATION_S[scale]
    with tempfile.TemporaryDirectory(prefix="siyu-bench-ingest-") as tmp:
        directory = Path(tmp)
        (directory / "http").mkdir()
        http = _http_run(directory / "http", duration)
        progress(f"http: {http['events_per_s']:,.0f} events/s, p99 {http['p99_ms']:.0f} ms")
        raw = _raw_run(directory, min(http["acknowledged"], 500_000) or BATCH * CLIENTS)
        progress(f"raw DuckDB Arrow insert: {raw['events_per_s']:,.0f} events/s")
    figures = {
        "clients": CLIENTS,
        "batch": BATCH,
        "duration_s": duration,
        "http_events_per_s": http["events_per_s"],
        "raw_events_per_s": raw["events_per_s"],
        "p50_batch_ms": http["p50_ms"],
        "p99_batch_ms": http["p99_ms"],
        "acknowledged": http["acknowledged"],
        "in_store": http["in_store"],
        "lost": http["lost"],
        "server_cpu_us_per_event": http["server_cpu_us_per_event"],
        "client_cpu_us_per_event": http["client_cpu_us_per_event"],
        "http": http,
        "raw": raw,
        "pyarrow": pa.__version__,
    }
    targets = [Target("lost events", float(http["lost"]), 0.0, "<=")]
    if scale == "full":
        targets.append(Target("events/s", http["events_per_s"], TARGET_EVENTS_PER_S, ">="))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"http/raw": http["events_per_s"] / raw["events_per_s"]},
        targets=targets,
        headline=("http_events_per_s", "raw_events_per_s", "p50_batch_ms", "p99_batch_ms", "lost"),
    )
