"""The page without JavaScript: a form to join, a cookie, refresh to read, a form to send."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.web.door import Door

pytestmark = pytest.mark.anyio
ALICE = "+15145550121"


async def join_without_script(door: Door, remember: bool = False) -> httpx.AsyncClient:
    """A browser without script: its own cookie jar."""
    browser = httpx.AsyncClient(base_url=door.base, follow_redirects=False)
    code = door.invite()
    data = {"agree": "1", "mode": "form", **({"remember": "1"} if remember else {})}
    r = await browser.post(f"/j/{code}", data=data)
    assert r.status_code == 303 and r.headers["location"].startswith("/c")
    return browser


def form_key(page: str) -> str:
    found = re.search(r'name="form_key" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_the_cookie_is_http_only_strict_and_ends_with_the_browser(door: Door) -> None:
    browser = await join_without_script(door)
    r = await browser.post(f"/j/{door.invite()}", data={"agree": "1", "mode": "form"})

    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/c" in cookie
    assert "max-age" not in cookie and "expires" not in cookie  # a session cookie
    await browser.aclose()


async def test_remember_this_device_keeps_the_cookie_for_a_while(door: Door) -> None:
    browser = httpx.AsyncClient(base_url=door.base)
    r = await browser.post(
        f"/j/{door.invite()}", data={"agree": "1", "mode": "form", "remember": "1"}
    )
    assert "max-age=2592000" in r.headers["set-cookie"].lower()
    await browser.aclose()


async def test_refresh_to_read_and_a_form_to_send(door: Door) -> None:
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)
    await door.phone_says("alice", "are you there?")
    await door.until(lambda: any("has joined" in t for t in door.texts_of("alice")))

    async def page() -> str:
        return (await browser.get("/c")).text

    await door.until_async(lambda text: "are you there?" in text, page)
    r = await browser.post(
        "/c/send", data={"text": "yes, from a form", "form_key": form_key(await page())}
    )

    assert r.status_code == 303 and r.headers["location"] == "/c"
    await door.until(lambda: any(t.endswith(": yes, from a form") for t in door.texts_of("alice")))
    assert "yes, from a form" in await page()
    await browser.aclose()


async def test_a_send_form_without_the_form_key_is_refused(door: Door) -> None:
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)

    forged = await browser.post("/c/send", data={"text": "forged"})
    wrong = await browser.post("/c/send", data={"text": "forged", "form_key": "0" * 32})

    assert forged.status_code == 403 and wrong.status_code == 403
    await browser.aclose()


async def test_a_send_form_from_another_site_is_refused(door: Door) -> None:
    browser = await join_without_script(door)
    key = form_key((await browser.get("/c")).text)

    r = await browser.post(
        "/c/send",
        data={"text": "cross-site", "form_key": key},
        headers={"Origin": "https://evil.example"},
    )

    assert r.status_code == 403
    await browser.aclose()


async def test_html_in_a_message_is_shown_as_text(door: Door) -> None:
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)

    await door.phone_says("alice", '<script>alert("x")</script><img src=x onerror=alert(1)>')

    async def page() -> str:
        return (await browser.get("/c")).text

    text = await door.until_async(lambda t: "&lt;script&gt;" in t, page)
    assert "<script>alert" not in text and "<img src=x" not in text
    await browser.aclose()


async def test_quick_exit_forgets_the_browser(door: Door) -> None:
    browser = await join_without_script(door, remember=True)

    r = await browser.post("/c/exit")

    assert r.status_code == 303 and r.headers["location"].endswith("/health")
    assert r.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert 'n=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    await browser.aclose()


async def test_every_page_carries_the_safety_headers(door: Door) -> None:
    browser = await join_without_script(door)
    code = door.invite()

    for r in (
        await door.client.get(f"/j/{code}"),
        await door.client.get("/j/WRONGCODE2"),
        await browser.get("/c"),
        await door.client.get("/c"),
    ):
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "http" not in csp.split("form-action")[0]  # no third party for resources
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers.get_list("content-security-policy") == [csp]  # exactly one policy
    await browser.aclose()


async def test_the_first_load_is_light(door: Door) -> None:
    code = door.invite()
    sizes = [
        len((await door.client.get(path)).content)
        for path in (f"/j/{code}", "/w/app.css", "/w/app.js", "/w/icon.svg")
    ]
    chat = [len((await door.client.get(p)).content) for p in ("/c", "/w/app.css", "/w/app.js")]

    assert sum(sizes) < 60_000 and sum(chat) < 60_000


async def test_the_join_page_is_in_the_invites_language(door: Door) -> None:
    fr = await door.client.get(f"/j/{door.invite('fr')}")
    en = await door.client.get(f"/j/{door.invite('en')}")

    assert '<html lang="fr">' in fr.text and "J&#39;ai lu ces textes" in fr.text
    assert '<html lang="en">' in en.text and "I have read this and I agree" in en.text
    assert "IP" in en.text  # what is kept: the web notice
