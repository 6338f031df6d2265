"""Attacks on the web door: links, tokens, streams, posts, floods, scripts, and what is kept."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlmodel import Session, select

from cercle.logs import configure_logging
from relay.delivery.sender import pending_count
from relay.groups import invites
from relay.service.groups import create_invite
from relay.service.relay import GroupSettings
from relay.storage.models import Member, WebCopy
from tests.web.door import ALICE_NUMBER, Door, door

__all__ = ["door"]  # the fixture

pytestmark = pytest.mark.anyio


async def test_a_guessed_link_and_a_used_link_look_the_same(door: Door) -> None:
    code = door.invite()
    await door.join(code, read=False)

    used = await door.client.get(f"/j/{code}")
    guessed = await door.client.get("/j/ABCDEFGHJK")
    replayed = await door.client.post(f"/j/{code}", data={"agree": "1", "mode": "js"})

    assert used.status_code == guessed.status_code == replayed.status_code == 404
    assert used.text == guessed.text == replayed.text
    with Session(door.app.engine) as s:
        assert len(s.exec(select(Member)).all()) == 1


async def test_guessing_links_is_rate_limited_per_client_with_the_same_page(door: Door) -> None:
    code = door.invite()
    answers = [await door.client.get(f"/j/ABCDEFGH{i:02d}") for i in range(20)]

    over = await door.client.get(f"/j/{code}")  # a right link, from a client over its limit

    assert {a.status_code for a in answers} == {over.status_code} == {404}
    assert {a.text for a in answers} == {over.text}


async def test_a_wrong_token_opens_nothing(door: Door) -> None:
    web = await door.join(read=False)
    wrong = {"Authorization": "Bearer " + web.token[:-2] + "xx"}

    assert (await door.client.get("/c/events", headers=wrong)).status_code == 401
    assert (await door.client.post("/c/send", data={"text": "x"}, headers=wrong)).status_code in (
        401,
        403,
    )
    assert (await door.client.post("/c/ack", data={"upto": "9"}, headers=wrong)).status_code == 401
    assert (await door.client.get("/c/events")).status_code == 401


def unread_copies(door: Door) -> int:
    """Copies stored for browsers that they have not acknowledged yet."""
    with Session(door.app.engine) as s:
        return len(s.exec(select(WebCopy.id)).all())


async def test_a_token_from_another_group_reads_only_its_own_group(door: Door) -> None:
    await anyio.to_thread.run_sync(
        lambda: door.app.relay.create_group(GroupSettings("jeudi", lang="en", timer_seconds=3600))
    )
    other_code = invites.link_token(door.app.relay.keys, create_invite(door.app.relay, "jeudi"))
    mardi, jeudi = await door.join(), await door.join(other_code)
    await door.welcomed(mardi)
    await door.welcomed(jeudi)

    await mardi.says("only for mardi")
    await jeudi.says("only for jeudi")

    await door.until(lambda: "only for jeudi" in jeudi.texts and "only for mardi" in mardi.texts)
    # Every copy has gone out and both browsers have read (and acknowledged) every copy stored
    # for them: a copy that crossed groups would be in their texts now.
    await door.until(lambda: pending_count(door.app.engine) == 0 and not unread_copies(door))
    assert all("only for mardi" not in t for t in jeudi.texts)
    assert all("only for jeudi" not in t for t in mardi.texts)


async def test_no_request_names_another_members_stream(door: Door) -> None:
    one, two = await door.join(read=False), await door.join()
    two_name = await door.welcomed(two)
    headers = one.headers

    async with door.client.stream("GET", "/c/events?after=0&seat=1&member=2", headers=headers) as r:
        assert r.status_code == 200
        got = ""
        with anyio.move_on_after(0.5):
            async for chunk in r.aiter_text():
                got += chunk
    assert f"now in the group as {two_name}" not in got  # two's welcome is two's alone
    assert "now in the group as" in got  # one's own


async def test_oversized_and_malformed_posts_are_refused_clearly(door: Door) -> None:
    web = await door.join()
    h = web.headers
    post = door.client.post

    assert (await post("/c/send", data={"text": "x" * 20_000}, headers=h)).status_code == 413
    assert (await post("/c/send", data={"text": "x" * 4001}, headers=h)).status_code == 413
    assert (await post("/c/send", json={"text": "hi"}, headers=h)).status_code == 415
    bad = {**h, "Content-Type": "application/x-www-form-urlencoded"}
    assert (await post("/c/send", content=b"text=\xff\xfe", headers=bad)).status_code == 400
    assert (await post("/c/send", data={"text": "   "}, headers=h)).status_code == 400
    assert (await post("/c/ack", data={"upto": "9" * 40}, headers=h)).status_code == 204
    ok = await post("/c/send", data={"text": "fine", "nonce": "<>"}, headers=h)
    assert ok.status_code == 204
    await door.until(lambda: "fine" in web.texts)


async def test_a_retried_post_is_relayed_once(door: Door) -> None:
    await door.phone("alice", ALICE_NUMBER)
    web = await door.join()
    await door.welcomed(web)

    for _ in range(3):
        assert (await web.says("once only", nonce="retry-nonce-1")).status_code == 204

    await door.until(lambda: any(t.endswith(": once only") for t in door.texts_of("alice")))
    # Every copy has gone out (the three POSTs were answered): a second one would be here now.
    await door.until(lambda: pending_count(door.app.engine) == 0)
    assert sum(t.endswith(": once only") for t in door.texts_of("alice")) == 1
    assert web.texts.count("once only") == 1


async def test_a_flood_of_connections_is_bounded_and_the_server_still_answers(
    door: Door,
) -> None:
    web = await door.join(read=False)
    opened: list[int] = []

    async def hold() -> None:
        async with door.client.stream("GET", "/c/events", headers=web.headers) as r:
            opened.append(r.status_code)
            if r.status_code == 200:
                await anyio.sleep(10)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(hold)
        await door.until(lambda: len(opened) == 6)
        assert sorted(opened) == [200, 200, 200, 503, 503, 503]
        assert door.web.hub.connected == 3
        assert (await door.client.get("/health")).status_code == 200
        door.web.hub.max_streams = 3
        other = await door.join(read=False)
        refused = await door.client.get("/c/events", headers=other.headers)
        assert refused.status_code == 503
        tg.cancel_scope.cancel()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything every logger writes, configured as the processes configure it."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(logging.DEBUG, stream)
    yield stream
    root.handlers[:] = saved
    root.setLevel(level)


async def test_logs_hold_no_token_code_ip_or_words(door: Door, logs: io.StringIO) -> None:
    await door.phone("alice", ALICE_NUMBER)
    code = door.invite()
    web = await door.join(code)
    await door.welcomed(web)
    await web.says("a very private sentence")
    await door.until(lambda: any("very private" in t for t in door.texts_of("alice")))
    await door.client.get("/j/ABCDEFGHJK")
    await door.client.get("/c/events", headers={"Authorization": "Bearer nope"})

    logged = logs.getvalue()
    assert "join attempt refused" in logged  # it did log, without the code
    for secret in (web.token, code, "127.0.0.1", "very private", ALICE_NUMBER):
        assert secret not in logged


async def test_the_database_holds_no_token_code_or_words(door: Door, tmp_path: Path) -> None:
    code = door.invite()
    one, two = await door.join(code), await door.join()
    await door.welcomed(two)
    await one.says("zanzibar marmalade")
    await door.until(lambda: any("zanzibar" in t for t in two.texts))
    one.stop()  # copies for one now wait, unread, in the database
    await two.says("unread quince")

    assert door.app.providers.web is not None
    seat = door.app.providers.web.store.authenticate(one.token)
    assert seat is not None

    def unread() -> int:
        with Session(door.app.engine) as s:
            rows = s.exec(select(WebCopy).where(WebCopy.seat_hash == seat.seat_hash)).all()
            return len(rows)

    await door.until(lambda: unread() > 0)  # one's copy of "unread quince" waits, sealed

    def database_files() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.glob("cercle.db*"))

    stored = await anyio.to_thread.run_sync(database_files)
    for secret in (one.token, two.token, code, "zanzibar", "quince", "127.0.0.1"):
        assert secret.encode() not in stored
