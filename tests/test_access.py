"""Access control and limits: API key, exposure check, one rate limit for API and chat, failed
logins slowed and locked out, X-Forwarded-For from trusted proxies only, request size, no
secret leaks."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import live_server, make_settings, ui_server
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.errors import ExposureError
from assistant.server.auth import check_exposure
from assistant.service import Assistant
from assistant.settings import Settings
from wiring import create_app

KEY = "s3cret-newsdesk-key"
QUESTION = {"question": "How large is Japan's debt compared with its GDP?"}
GOOD = {"Authorization": f"Bearer {KEY}"}
BAD = {"Authorization": "Bearer guess"}


@pytest.fixture(scope="module")
def keyed(news_store: Settings) -> TestClient:
    settings = news_store.model_copy(update={"api_key": SecretStr(KEY),
                                             "rate_limit_enabled": False})
    return TestClient(create_app(Assistant(settings)))


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/answer", QUESTION), ("post", "/answer/stream", QUESTION),
    ("get", "/articles", None), ("get", "/sources", None),
])
def test_api_routes_require_the_key(keyed: TestClient, method: str, path: str,
                                    body: dict | None) -> None:
    call = getattr(keyed, method)
    kwargs = {"json": body} if body else {}
    assert call(path, **kwargs).status_code == 401
    wrong = call(path, headers={"Authorization": "Bearer nope"}, **kwargs)
    assert wrong.status_code == 401 and KEY not in wrong.text
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    right = call(path, headers={"Authorization": f"Bearer {KEY}"}, **kwargs)
    assert right.status_code == 200


def test_health_stays_open_and_shows_no_secret(keyed: TestClient) -> None:
    response = keyed.get("/health")
    assert response.status_code == 200 and KEY not in response.text
    assert KEY not in keyed.get("/openapi.json").text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "news.example"])
def test_non_loopback_host_without_key_refuses_to_start(host: str) -> None:
    with pytest.raises(ExposureError, match="NEWSDESK_API_KEY"):
        check_exposure(Settings(_env_file=None, host=host))
    check_exposure(Settings(_env_file=None, host=host, api_key=KEY))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_host_needs_no_key(host: str) -> None:
    check_exposure(Settings(_env_file=None, host=host))
    assert not Settings(_env_file=None, host=host).rate_limited


def test_rate_limit_answers_429_with_retry_after(news_store: Settings) -> None:
    settings = news_store.model_copy(update={"rate_limit": "3/minute",
                                             "rate_limit_enabled": True})
    client = TestClient(create_app(Assistant(settings)))
    codes = [client.get("/articles").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.post("/answer", json=QUESTION)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert client.get("/health").status_code == 200  # liveness is never limited


def test_rate_limit_is_on_by_default_off_loopback() -> None:
    assert Settings(_env_file=None, host="0.0.0.0", api_key=KEY).rate_limited
    assert not Settings(_env_file=None, host="127.0.0.1").rate_limited


def test_bad_limits_and_proxies_fail_at_startup() -> None:
    from pydantic import ValidationError

    for bad in ({"rate_limit": "lots"}, {"auth_failure_limit": "10 per minute please"},
                {"trusted_proxies": "proxy.internal"}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **bad)


def test_oversized_request_gets_413(news_store: Settings) -> None:
    settings = news_store.model_copy(update={"max_request_bytes": 4096})
    client = TestClient(create_app(Assistant(settings)))
    history = [{"role": "user", "content": "x" * 3000}] * 3
    response = client.post("/answer", json={**QUESTION, "history": history})
    assert response.status_code == 413
    assert client.post("/answer", json=QUESTION).status_code == 200


def test_chat_asks_for_the_key_once_per_session(news_store: Settings) -> None:
    from ui import create_server

    app, _ = create_server(news_store.model_copy(update={"api_key": SecretStr(KEY)}))
    browser = TestClient(app)
    assert browser.get("/config").status_code == 401
    assert browser.post("/login", data={"username": "me", "password": "wrong"}).status_code == 400
    assert browser.post("/login", data={"username": "me", "password": KEY}).status_code == 200
    assert browser.get("/config").status_code == 200  # the session cookie carries on
    assert TestClient(app).get("/config").status_code == 401  # another browser must log in


def test_server_refuses_to_start_exposed_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import ui
    from assistant import settings as settings_module

    monkeypatch.setenv("NEWSDESK_HOST", "0.0.0.0")
    monkeypatch.delenv("NEWSDESK_API_KEY", raising=False)
    settings_module.get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit, match="refusing to listen on 0.0.0.0"):
            ui.main()
    finally:
        settings_module.get_settings.cache_clear()


def test_no_secret_in_logs_health_errors_or_chat(news_store: Settings,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """With DEBUG logging everywhere, a failing LLM server and wrong keys, neither the API key
    nor the LLM key shows up in any log record, response or chat message."""
    import logging

    from ui import make_respond

    llm_key = "sk-live-llm-key-0123456789"
    settings = news_store.model_copy(update={
        "api_key": SecretStr(KEY), "openai_api_key": SecretStr(llm_key),
        "openai_base_url": "http://127.0.0.1:9/v1", "rate_limit_enabled": False})
    caplog.set_level(logging.DEBUG)
    assistant = Assistant(settings)
    client = TestClient(create_app(assistant))
    auth = {"Authorization": f"Bearer {KEY}"}
    texts = [
        client.get("/health").text,
        client.post("/answer", json=QUESTION).text,
        client.post("/answer", json=QUESTION, headers={"Authorization": "Bearer wrong"}).text,
        client.post("/answer", json=QUESTION, headers=auth).text,  # LLM down: 502
        client.post("/answer/stream", json=QUESTION, headers=auth).text,
    ]
    try:
        texts.extend(make_respond(assistant)(QUESTION["question"], []))
    except Exception as exc:  # the chat re-raises for Gradio to log; its text must be clean
        texts.append(str(exc))
    logged = "\n".join(r.getMessage() + " " + str(r.args) for r in caplog.records)
    for secret in (KEY, llm_key):
        assert secret not in logged
        assert all(secret not in text for text in texts)
    assert any("502" in t or "language model server failed" in t for t in texts)
    assert "Sending HTTP Request" in logged  # the openai client did log its requests


def _limited(settings: Settings, **update: Any) -> Settings:
    """`settings` with the key set and the rate limit on (as off loopback)."""
    return settings.model_copy(update={"api_key": SecretStr(KEY), "rate_limit_enabled": True,
                                       **update})


def _timed(call: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = call(*args, **kwargs)
    return response, time.perf_counter() - start


def test_wrong_keys_use_up_the_rate_limit_budget(news_store: Settings) -> None:
    settings = _limited(news_store, rate_limit="3/minute", auth_failure_limit="100/minute")
    client = TestClient(create_app(Assistant(settings)))
    assert [client.get("/articles", headers=BAD).status_code for _ in range(3)] == [401] * 3
    refused = client.get("/articles", headers=GOOD)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60


def test_failed_key_is_answered_only_after_a_delay(news_store: Settings) -> None:
    settings = news_store.model_copy(update={"api_key": SecretStr(KEY)})
    client = TestClient(create_app(Assistant(settings)))
    assert settings.auth_failure_delay_s >= 0.5
    for headers in (BAD, {}):
        response, took = _timed(client.post, "/answer", json=QUESTION, headers=headers)
        assert response.status_code == 401 and took >= settings.auth_failure_delay_s


@pytest.mark.slow
@pytest.mark.server
def test_slowed_failures_do_not_hold_up_other_requests(news_store: Settings) -> None:
    """The delay is an await, not a sleep on the event loop: while failed attempts wait, the
    server answers others."""
    settings = news_store.model_copy(update={"api_key": SecretStr(KEY),
                                             "auth_failure_delay_s": 2.0})
    done: dict[str, float] = {}
    with live_server(create_app(Assistant(settings))) as url:
        def fail(n: int) -> None:
            assert httpx.get(f"{url}/articles", headers=BAD, timeout=30).status_code == 401
            done[f"failure {n}"] = time.perf_counter()

        start = time.perf_counter()
        failures = [threading.Thread(target=fail, args=(n,)) for n in range(4)]
        for thread in failures:
            thread.start()
        time.sleep(0.3)
        assert httpx.get(f"{url}/articles", headers=GOOD, timeout=30).status_code == 200
        answered = time.perf_counter()
        for thread in failures:
            thread.join()
    assert len(done) == 4 and all(t - start >= 2.0 for t in done.values())
    assert answered < min(done.values())


def test_right_key_is_refused_while_the_client_is_locked_out(news_store: Settings) -> None:
    settings = news_store.model_copy(update={"api_key": SecretStr(KEY),
                                             "rate_limit_enabled": False,
                                             "auth_failure_limit": "3/minute"})
    app = create_app(Assistant(settings))
    client = TestClient(app, client=("198.51.100.7", 50000))
    assert [client.get("/articles", headers=BAD).status_code for _ in range(3)] == [401] * 3
    locked = client.post("/answer", json=QUESTION, headers=GOOD)
    assert locked.status_code == 429 and 1 <= int(locked.headers["Retry-After"]) <= 60
    assert KEY not in locked.text
    other = TestClient(app, client=("198.51.100.8", 50000))
    assert other.get("/articles", headers=GOOD).status_code == 200
    assert client.get("/health").status_code == 200


def test_failed_logins_are_slowed_and_lock_the_client_out(news_store: Settings) -> None:
    from ui import create_server

    settings = news_store.model_copy(update={"api_key": SecretStr(KEY),
                                             "auth_failure_limit": "3/minute"})
    app, _ = create_server(settings)
    browser = TestClient(app)
    for _ in range(3):
        response, took = _timed(browser.post, "/login",
                                data={"username": "me", "password": "guess"})
        assert response.status_code == 400 and took >= settings.auth_failure_delay_s
    locked = browser.post("/login", data={"username": "me", "password": KEY})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert browser.get("/config").status_code == 401  # no session was opened
    assert browser.post("/answer", json=QUESTION, headers=GOOD).status_code == 429


def test_logins_use_the_same_budget_as_the_api(news_store: Settings) -> None:
    from ui import create_server

    app, _ = create_server(_limited(news_store, rate_limit="3/minute"))
    browser = TestClient(app)
    assert browser.post("/answer", json=QUESTION, headers=GOOD).status_code == 200
    assert browser.post("/login", data={"username": "me", "password": KEY}).status_code == 200
    for _ in range(3):  # the page and its assets are free
        assert browser.get("/").status_code == 200
        assert browser.get("/config").status_code == 200
    assert browser.get("/articles", headers=GOOD).status_code == 200
    refused = browser.post("/login", data={"username": "me", "password": KEY})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


@pytest.mark.slow
@pytest.mark.server
def test_chat_is_limited_by_the_same_budget_as_answer(news_store: Settings) -> None:
    """The chat through Gradio's HTTP API (what its page and gradio_client call) costs from the
    client's budget like /answer, and is refused with the same 429 once it is spent."""
    from ui import create_server

    app, _ = create_server(news_store.model_copy(update={"rate_limit": "3/minute",
                                                         "rate_limit_enabled": True}))
    ask = {"data": [QUESTION["question"], None, None, []]}  # the message, then the filter row
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/").status_code == 200
        dependencies = client.get("/config").json()["dependencies"]
        chat = next(d["id"] for d in dependencies if d["api_name"] == "chat")
        status = next(d["id"] for d in dependencies if d["targets"][0][1] == "load")
        for _ in range(4):  # the page's status line, loaded through the queue, is free
            loaded = client.post("/gradio_api/queue/join", json={
                "data": [], "fn_index": status, "session_hash": "page"})
            assert loaded.status_code == 200
        # Queued functions run only through the (charged) queue, never straight from /run.
        assert client.post("/gradio_api/run/chat", json=ask).status_code == 404
        joined = client.post("/gradio_api/call/chat", json=ask)
        assert joined.status_code == 200
        result = client.get(f"/gradio_api/call/chat/{joined.json()['event_id']}")
        assert "event: complete" in result.text and "400%" in result.text
        assert [client.post("/answer", json=QUESTION).status_code for _ in range(3)] == [
            200, 200, 429]
        refused = client.post("/gradio_api/call/chat", json=ask)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        queued = client.post("/gradio_api/queue/join", json={
            "data": [QUESTION["question"], []], "fn_index": chat,
            "session_hash": "page"})
        assert queued.status_code == 429
        assert client.get("/health").status_code == 200


@pytest.mark.slow
@pytest.mark.server
def test_rotating_forwarded_for_does_not_escape_the_limit(tmp_path: Path) -> None:
    # A store of its own: the server process owns its data dir (this process holds news_store).
    env = {"NEWSDESK_DATA_DIR": str(tmp_path / "store"), "NEWSDESK_RATE_LIMIT": "2/minute",
           "NEWSDESK_RATE_LIMIT_ENABLED": "true"}
    with ui_server(tmp_path / "store", tmp_path / "server.log", env) as (url, _):
        codes = [httpx.get(f"{url}/articles", headers={"X-Forwarded-For": f"203.0.113.{n}"},
                           timeout=30).status_code for n in range(1, 4)]
    assert codes == [200, 200, 429]


def test_forwarded_for_is_honoured_from_trusted_proxies_only(
        news_store: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    settings = make_settings(news_store.data_dir, rate_limit="2/minute",
                             rate_limit_enabled=True)
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    app = create_app(Assistant(settings))
    proxy = TestClient(app, client=("127.0.0.1", 50000))

    def get(client: TestClient, forwarded: str) -> int:
        return client.get("/articles", headers={"X-Forwarded-For": forwarded}).status_code

    # Through the proxy each client has its own budget, whatever it puts in front.
    assert [get(proxy, "203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert get(proxy, "spoofed, 203.0.113.1") == 429
    assert get(proxy, "203.0.113.1, 10.1.2.3") == 429  # a chain of trusted proxies
    assert get(proxy, "203.0.113.2") == 200
    # A client that is not a trusted proxy is its own address, whatever the header says.
    direct = TestClient(app, client=("198.51.100.9", 50000))
    assert [get(direct, f"203.0.113.{n}") for n in range(10, 13)] == [200, 200, 429]
