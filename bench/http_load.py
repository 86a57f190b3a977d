"""The running server (`python ui.py`) under load: startup time, answers/s, latency, peak RSS.

The server runs as a subprocess on a free loopback port over a copy of a benchmark store; the
load generator is a fixed number of client threads, each with its own `httpx.Client`, asking
`POST /answer` back to back for a bounded time and a bounded number of requests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.latency import percentile

ROOT = Path(__file__).resolve().parents[1]
# Settings the server must not inherit from the developer's shell.
_CLEARED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHROMA_HOST", "CHROMA_PORT",
            "NEWSDESK_API_KEY", "NEWSDESK_HOST", "NEWSDESK_PORT", "NEWSDESK_DATA_DIR",
            "NEWSDESK_COLLECTION", "NEWSDESK_RATE_LIMIT_ENABLED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    startup_s: float
    log: Path

    def peak_rss_mb(self) -> float:
        """The server process's peak resident set size so far (VmHWM), in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0


@contextlib.contextmanager
def serve(data_dir: Path, workdir: Path, timeout_s: float = 120.0,
          env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start `python ui.py` over `data_dir` and wait for `/health`; stop it on exit. `env`
    adds settings for the server (e.g. `NEWSDESK_COLLECTION`) after the developer's are
    cleared."""
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    server_env.update(env or {})
    server_env.update(NEWSDESK_DATA_DIR=str(data_dir), NEWSDESK_HOST="127.0.0.1",
                      NEWSDESK_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    log = workdir / f"server-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        started = time.perf_counter()
        # The working directory is the temp dir, so no developer `.env` is read.
        process = subprocess.Popen([sys.executable, str(ROOT / "ui.py")], cwd=workdir,
                                   env=server_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        startup_s = _wait_healthy(process, url, started, timeout_s, log)
        yield Server(process, url, startup_s, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], url: str, started: float,
                  timeout_s: float, log: Path) -> float:
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}; its log:\n"
                                 f"{log.read_text(errors='replace')[-2000:]}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise SystemExit(f"the server did not answer /health within {timeout_s:.0f} s")


def load(url: str, questions: list[str], clients: int = 8, duration_s: float = 20.0,
         max_requests: int = 5000, timeout_s: float = 30.0) -> dict[str, Any]:
    """`clients` threads ask `questions` (round robin) until `duration_s` or `max_requests`."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    issued = 0
    deadline = time.perf_counter() + duration_s

    def worker(offset: int) -> None:
        nonlocal issued
        with httpx.Client(base_url=url, timeout=timeout_s) as client:
            i = offset
            while time.perf_counter() < deadline:
                with lock:
                    if issued >= max_requests:
                        return
                    issued += 1
                question = questions[i % len(questions)]
                i += clients
                started = time.perf_counter()
                try:
                    response = client.post("/answer", json={"question": question})
                    ok = response.status_code == 200 and "citations" in response.json()
                    reason = str(response.status_code)
                except httpx.HTTPError as exc:
                    ok, reason = False, type(exc).__name__
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[reason] = errors.get(reason, 0) + 1

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + timeout_s + 5)
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "answers": len(latencies),
        "errors": errors,
        "http_answers_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "http_p50_ms": round(percentile(latencies, 0.50), 1),
        "http_p95_ms": round(percentile(latencies, 0.95), 1),
    }
