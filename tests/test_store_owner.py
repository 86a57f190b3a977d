"""One process owns an embedded store directory: others are told who, and the hold dies with
its process however it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_settings

from assistant.errors import StoreBusyError, StoreError
from assistant.index import store_owner
from assistant.index.store import NewsStore

HOLD = """
import sys, time
from pathlib import Path
from assistant.index import store_owner
lock = store_owner.acquire(Path(sys.argv[1]), role=sys.argv[2])
if sys.argv[2] == "server":
    lock.publish("http://127.0.0.1:1")
print("held", flush=True)
time.sleep(600)
"""


def _holder(directory: Path, role: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(directory), role],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_held_directory_names_its_owner_and_is_refused(tmp_path: Path, embeddings) -> None:
    holder = _holder(tmp_path / "store", "ingest")
    try:
        owner = store_owner.current_owner(tmp_path / "store")
        assert owner is not None and owner.pid == holder.pid and owner.role == "ingest"
        with pytest.raises(StoreBusyError, match=f"newsdesk-ingest \\(pid {holder.pid}\\)"):
            NewsStore(make_settings(tmp_path / "store"), embeddings)
    finally:
        holder.kill()
        holder.wait()


def test_a_server_is_never_waited_for(tmp_path: Path) -> None:
    holder = _holder(tmp_path / "store", "server")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match="one server per data directory"):
            store_owner.acquire(tmp_path / "store", wait=True)
        assert time.monotonic() - started < 5
        owner = store_owner.current_owner(tmp_path / "store")
        assert owner is not None and owner.url == "http://127.0.0.1:1" and owner.token
    finally:
        holder.kill()
        holder.wait()


def test_an_ingest_is_waited_for_and_the_hold_dies_with_its_process(tmp_path: Path) -> None:
    holder = _holder(tmp_path / "store", "ingest")
    told: list[object] = []

    def on_wait(owner: object) -> None:
        told.append(owner)
        os.kill(holder.pid, signal.SIGKILL)  # a crash: the kernel drops the lock

    lock = store_owner.acquire(tmp_path / "store", wait=True, on_wait=on_wait)
    holder.wait()
    try:
        assert len(told) == 1
        assert store_owner.current_owner(tmp_path / "store").pid == os.getpid()
    finally:
        lock.release()
    assert store_owner.current_owner(tmp_path / "store") is None


def test_stores_of_one_process_share_the_hold(tmp_path: Path, embeddings) -> None:
    settings = make_settings(tmp_path / "store")
    first, second = NewsStore(settings, embeddings), NewsStore(settings, embeddings)
    first.close()
    assert store_owner.current_owner(tmp_path / "store") is not None  # the second holds it
    second.close()
    assert store_owner.current_owner(tmp_path / "store") is None


def test_a_read_only_directory_is_named_as_such(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits: a read-only bind mount does it (as in test_disk).
        ro = tmp_path / "ro"
        ro.mkdir()
        subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match="read-only") as info:
            store_owner.acquire(ro)
        assert info.value.cause == "read_only"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "--lazy", str(ro)], check=False)
