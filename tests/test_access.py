"""Access control and limits: API key, exposure check, rate limit, request size, no secret leaks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.errors import ExposureError
from assistant.server.http import check_exposure, create_app
from assistant.service import Assistant
from assistant.settings import Settings

KEY = "s3cret-newsdesk-key"
QUESTION = {"question": "How large is Japan's debt compared with its GDP?"}


@pytest.fixture(scope="module")
def keyed(news_store: Settings) -> TestClient:
    settings = news_store.model_copy(update={"api_key": SecretStr(KEY),
                                             "rate_limit_enabled": False})
    return TestClient(create_app(Assistant(settings)))


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/answer", QUESTION), ("post", "/answer/stream", QUESTION),
    ("get", "/articles", None),
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
