"""URLs given to the server reach public addresses only: every address class refused, on
every hop (redirects, feed item links), with one message whatever listens there; hosts and
networks the operator lists are allowed; the operator's own fetches are not restricted.

The refused classes that are not loopback are checked without sending a packet (the policy
resolves and refuses before any connection); only loopback is ever connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, live_server, make_settings
from fastapi.testclient import TestClient
from news_site import NewsSite
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from assistant.service import Assistant
from assistant.settings import Settings
from ingest.fetch_guard import AddressPolicy, AddressRefused, is_internal
from ingest.web import read_urls
from wiring import create_app

SECRET = "The vault password is tangerine-hovercraft-42."

INTERNAL = ["127.0.0.1", "127.8.9.10", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
            "169.254.169.254", "fe80::1", "100.64.0.1", "224.0.0.1", "ff02::1",
            "240.0.0.1", "255.255.255.255", "0.0.0.0", "::", "fc00::1", "fd12:3456::1",
            "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254",
            "64:ff9b::a00:1", "2002:7f00:1::1", "2001:db8::1", "192.0.2.1", "198.18.0.1"]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
          "64:ff9b::808:808"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert is_internal(ip)
    assert not AddressPolicy().allows(address, ip)
    with pytest.raises(AddressRefused):
        AddressPolicy().addresses(address, 80)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))
    assert AddressPolicy().addresses(address, 80)


def test_the_operator_allows_named_hosts_and_networks() -> None:
    policy = AddressPolicy(["intranet.example", "*.corp.example", "10.1.0.0/16", "[::1]"])
    private = ipaddress.ip_address("10.9.9.9")
    assert policy.allows("intranet.example", private)
    assert policy.allows("news.corp.example", private)
    assert not policy.allows("corp.example.evil", private)
    assert policy.allows("x", ipaddress.ip_address("10.1.2.3"))
    assert policy.allows("x", ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not policy.allows("x", ipaddress.ip_address("10.2.0.1"))
    assert policy.allows("x", ipaddress.ip_address("::1"))
    assert not policy.allows("x", ipaddress.ip_address("127.0.0.1"))


def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    with pytest.raises(AddressRefused):
        AddressPolicy().addresses("localhost", 80)
    assert AddressPolicy(["localhost"]).addresses("localhost", 80)


@pytest.fixture(scope="module")
def internal() -> Iterator[dict[str, Any]]:
    """An "internal" service on loopback that must never be reached for a user."""
    hits: list[str] = []

    async def secret(request: Request) -> Response:
        hits.append(request.url.path)
        return PlainTextResponse(SECRET)

    app = Starlette(routes=[Route("/{path:path}", secret)])
    with live_server(app) as url:
        yield {"url": url, "hits": hits}


@pytest.fixture
def hostile(news_site: NewsSite, internal: dict[str, Any]) -> NewsSite:
    """The news site (served on 127.0.0.1, reached as `localhost`), pointing at the internal
    service through a redirect and through a feed item's link."""
    news_site.internal = f"{internal['url']}/secret"
    internal["hits"].clear()
    return news_site


def _client(tmp_path: Path, embeddings: Any, **overrides: Any) -> TestClient:
    settings = make_settings(tmp_path / "store", **overrides)
    return TestClient(create_app(Assistant(settings)))


def _post_urls(client: TestClient, urls: list[str]) -> dict[str, Any]:
    response = client.post("/articles", json={"urls": urls})
    assert response.status_code == 200, response.text
    return response.json()


def _notes(body: dict[str, Any]) -> dict[str, str]:
    return {outcome["url"]: " ".join(item["note"] or "" for item in outcome["items"])
            for outcome in body["urls"]}


def test_the_http_route_refuses_every_internal_form_with_one_message(
        tmp_path: Path, embeddings: Any, internal: dict[str, Any]) -> None:
    port = internal["url"].rsplit(":", 1)[1]
    closed = free_port()
    urls = [f"http://127.0.0.1:{port}/secret", f"http://127.0.0.1:{closed}/secret",
            f"http://localhost:{port}/secret", f"http://[::1]:{port}/secret",
            f"http://[::ffff:127.0.0.1]:{port}/secret", f"http://2130706433:{port}/secret",
            f"http://0.0.0.0:{port}/secret", f"http://127.1.2.3:{port}/secret"]
    internal["hits"].clear()
    body = _post_urls(_client(tmp_path, embeddings), urls)
    assert body["added"] == 0 and body["failed"] == len(urls)
    assert [o["url"] for o in body["urls"]] == urls
    notes = _notes(body)
    for url in urls:
        assert notes[url].startswith("refused: ") and "not a public address" in notes[url]
    # An open port and a closed one read the same: nothing says what listens.
    assert notes[urls[0]] == notes[urls[1]]
    assert internal["hits"] == []


def test_redirects_and_feed_item_links_to_internal_addresses_are_refused(
        tmp_path: Path, embeddings: Any, hostile: NewsSite, internal: dict[str, Any]) -> None:
    site = hostile.base.replace("127.0.0.1", "localhost")
    client = _client(tmp_path, embeddings, fetch_allow=["localhost"])
    body = _post_urls(client, [f"{site}/to-internal", f"{site}/feeds/internal.xml"])
    redirect, feed = body["urls"]
    assert redirect["items"][0]["status"] == "failed"
    assert redirect["items"][0]["note"].startswith(f"redirected to {hostile.internal}: refused")
    # The feed item's page is refused; the feed's own text of the item is what is stored.
    [item] = feed["items"]
    assert item["status"] == "added" and "refused" in item["note"]
    assert internal["hits"] == []
    answer = client.post("/answer", json={"question": "What is the vault password?"}).json()
    assert "tangerine" not in str(answer)


def test_an_allowed_network_may_be_fetched(tmp_path: Path, embeddings: Any,
                                           news_site: NewsSite) -> None:
    client = _client(tmp_path, embeddings, fetch_allow=["127.0.0.0/8"])
    body = _post_urls(client, [f"{news_site.base}/story/ferry"])
    assert body["added"] == 1, body
    article_id = body["urls"][0]["items"][0]["article_id"]
    listed = client.get("/articles").json()["articles"]
    assert [a["article_id"] for a in listed] == [article_id]


def test_the_second_tab_refuses_internal_addresses(tmp_path: Path, embeddings: Any,
                                                   internal: dict[str, Any]) -> None:
    from ui import build_chat

    settings = make_settings(tmp_path / "store")
    assistant = Assistant(settings)
    app = create_app(assistant)
    demo = build_chat(assistant, writing=app.state.writing, add_urls=app.state.add_urls)
    add = demo.library_fns[0]
    internal["hits"].clear()
    summary, rows, *_ = add(None, f"{internal['url']}/secret\nnot-a-url", "",
                           progress=lambda *a, **k: None)
    assert "2 failed" in summary
    reasons = {row[0]: row[2] for row in rows}
    assert reasons[f"{internal['url']}/secret"].startswith("refused: 127.0.0.1 is not")
    assert reasons["not-a-url"] == "not an http(s) URL"
    assert internal["hits"] == []


def test_the_operator_fetches_any_address(news_site: NewsSite,
                                          settings_factory: Callable[..., Settings]) -> None:
    result = read_urls([f"{news_site.base}/story/ferry"], settings_factory(), trusted=True)
    assert result.errors == [] and len(result.articles) == 1
    refused = read_urls([f"{news_site.base}/story/ferry"], settings_factory())
    assert refused.articles == [] and refused.errors[0].reason.startswith("refused: ")


def test_urls_need_a_list_and_bad_ones_are_reported_one_by_one(tmp_path: Path,
                                                               embeddings: Any) -> None:
    client = _client(tmp_path, embeddings)
    assert client.post("/articles", json={}).status_code == 422
    assert client.post("/articles", json={"urls": []}).status_code == 422
    body = _post_urls(client, ["ftp://example.org/x", "nonsense"])
    assert body["failed"] == 2
    assert {o["items"][0]["note"] for o in body["urls"]} == {"not an http(s) URL"}
