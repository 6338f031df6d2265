"""Guessing invite codes and links: a flood of wrong guesses never keeps the right person out.

An abuser who has seen one link tries codes from many numbers and many web addresses. Each
source has its own limit; nobody else's guesses count against the survivor who holds a valid
code. The guesses are counted (no code, no number, no address) and staff see the surge.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from sqlmodel import Session, select

from cercle.health import run_checks
from cercle.health.join_guesses import SURGE, check_join_guesses
from relay.groups import guesses, invites
from relay.inbound.turn import Result
from relay.messages import Channel
from relay.service import jobs
from relay.service.groups import create_invite
from relay.storage.engine import make_engine, transaction
from relay.storage.models import Invite, JoinAttempt, MemberState
from tests.room import Person, Room
from tests.web.door import Door, door, run_door

__all__ = ["door"]  # the fixture


# --- JOIN <code> by SMS and by Signal ------------------------------------------------------


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Room]:
    """A group whose members may be on SMS or Signal."""
    r = Room(tmp_path, also=(Channel.SMS, Channel.SIGNAL))
    yield r
    r.check_invariants()


def guessers(room: Room, area: str, channel: Channel) -> list[Person]:
    """A hundred numbers an abuser holds (555-01xx: fictional in every area code)."""
    return [
        Person(
            room,
            f"guesser{n}",
            f"+1{area}5550{n:03d}",
            str(uuid.uuid4()) if channel == Channel.SIGNAL else None,
            channel=channel,
        )
        for n in range(100, 200)
    ]


def newcomer(room: Room, handle: str, number: str, channel: Channel) -> Person:
    uuid_ = str(uuid.uuid4()) if channel == Channel.SIGNAL else None
    person = Person(room, handle, number, uuid_, channel=channel)
    room.people.append(person)  # counted in the invariants once they join
    return person


def test_a_flood_of_wrong_codes_from_many_numbers_leaves_valid_codes_working(
    phones: Room,
) -> None:
    room = phones
    by_sms, by_signal = create_invite(room.relay, "mardi"), create_invite(room.relay, "mardi")
    flood = guessers(room, "438", Channel.SMS) + guessers(room, "450", Channel.SIGNAL)
    for guesser in flood:
        for _ in range(3):  # each within its own limit: 600 wrong guesses in all
            assert guesser.says(f"JOIN {invites.new_code()}") == Result.UNKNOWN_SENDER
    assert all(g.received == [] for g in flood)  # unknown senders learn nothing

    sam = newcomer(room, "sam", "+15145550150", Channel.SMS)
    sig = newcomer(room, "sig", "+15145550151", Channel.SIGNAL)

    assert sam.says(f"JOIN {by_sms}") == Result.STATE
    assert sig.says(f"JOIN {by_signal}") == Result.STATE
    assert "AGREE" in sam.last and "AGREE" in sig.last
    assert sam.record().state == sig.record().state == MemberState.INVITED


def test_one_number_over_its_limit_is_refused_while_other_numbers_are_not(phones: Room) -> None:
    room = phones
    mine, theirs = create_invite(room.relay, "mardi"), create_invite(room.relay, "mardi")
    guesser = newcomer(room, "guesser", "+15145550160", Channel.SMS)
    for _ in range(invites.PER_SENDER):
        guesser.says(f"JOIN {invites.new_code()}")

    other = newcomer(room, "other", "+15145550161", Channel.SMS)

    assert guesser.says(f"JOIN {mine}") == Result.UNKNOWN_SENDER  # silence, as for anyone
    assert guesser.received == []
    assert other.says(f"JOIN {theirs}") == Result.STATE
    room.later(hours=1, minutes=1)
    assert guesser.says(f"JOIN {mine}") == Result.STATE  # its own hour is over


def test_a_code_made_before_codes_had_12_characters_still_works(phones: Room) -> None:
    room = phones
    old = "ABCDEFGHJK"  # 10 characters, as codes were made before
    with room.session() as s:
        group = room.relay.group(s, "mardi")
        s.add(
            Invite(
                group_id=group.id or 0,
                code_hash=invites.code_hash(room.keys, old),
                created_by="admin",
                created_at=room.clock.now(),
                expires_at=room.clock.now() + invites.DEFAULT_EXPIRY,
            )
        )
        s.commit()
    ana = newcomer(room, "ana", "+15145550170", Channel.SMS)

    assert ana.says("JOIN abcde-fghjk") == Result.STATE


def test_the_count_of_refused_attempts_holds_no_code_number_or_address(phones: Room) -> None:
    room = phones
    for guesser in guessers(room, "819", Channel.SMS)[:10]:
        guesser.says("JOIN ABCDEFGHJKMN")

    with room.session() as s:
        keys = [a.key for a in s.exec(select(JoinAttempt)).all()]
        seen = guesses.recent(s, room.clock.now())
    counters = [k for k in keys if k.startswith(guesses.PREFIX)]
    assert counters == [f"guesses:sms:{room.clock.now():%Y%m%d%H}"]
    assert all(k in counters or len(k) == 64 for k in keys)  # the rest: keyed hashes only
    assert seen.last_hour == {"sms": 10}


# --- private links on the web door ----------------------------------------------------------


def source(address: str) -> dict[str, str]:
    """What a proxy on this machine adds for a client at ``address``."""
    return {"X-Forwarded-For": address}


async def guess(d: Door, headers: dict[str, str]) -> httpx.Response:
    return await d.client.get(f"/j/{invites.new_code()}", headers=headers)


async def opens(d: Door, link: str, headers: dict[str, str]) -> bool:
    """Open a link and agree, as the page's script does; whether a seat was given."""
    page = await d.client.get(f"/j/{link}", headers=headers)
    agreed = await d.client.post(f"/j/{link}", data={"agree": "1", "mode": "js"}, headers=headers)
    return page.status_code == 200 and agreed.status_code == 200 and "token" in agreed.json()


@pytest.mark.anyio
async def test_a_guessing_flood_from_many_addresses_leaves_a_valid_link_working(
    door: Door,
) -> None:
    link = door.invite()
    # A few addresses guessing until their limit, and many that guess once or twice.
    for n in range(3):
        for _ in range(25):
            await guess(door, source(f"198.51.100.{n}"))
    for n in range(120):
        await guess(door, source(f"203.0.113.{n}"))

    assert await opens(door, link, source("192.0.2.44"))


@pytest.mark.anyio
async def test_a_client_over_its_limit_gets_the_same_page_even_for_a_valid_link(
    door: Door,
) -> None:
    mine, theirs = door.invite(), door.invite()
    limit = door.web.config.joins_per_hour
    wrong = [await guess(door, source("198.51.100.9")) for _ in range(limit)]

    refused = await door.client.get(f"/j/{mine}", headers=source("198.51.100.9"))

    assert refused.status_code == wrong[0].status_code == 404
    assert refused.text == wrong[0].text  # nothing tells a guesser why
    assert "Demandez-en un nouveau à la personne qui vous" in refused.text
    english = await door.client.get(f"/j/{mine}?l=en", headers=source("198.51.100.9"))
    assert english.status_code == 404
    assert "Ask the person who gave it to you for a new one" in english.text
    assert await opens(door, theirs, source("198.51.100.10"))


@pytest.mark.anyio
async def test_a_forged_forwarded_for_from_behind_a_trusted_proxy_counts_the_real_client(
    door: Door,
) -> None:
    # The guesser writes its own X-Forwarded-For; the proxy appends the address it saw.
    link = door.invite()
    for n in range(door.web.config.joins_per_hour):
        await guess(door, source(f"10.{n}.0.1, 198.51.100.20"))

    forged = {"X-Forwarded-For": "10.99.0.1, 198.51.100.20"}
    assert (await door.client.get(f"/j/{link}", headers=forged)).status_code == 404
    assert await opens(door, link, source("198.51.100.21"))


@pytest.mark.anyio
async def test_a_typed_code_is_not_a_link_but_an_old_link_still_works(door: Door) -> None:
    typed = door.typed_invite()
    old = "ABCDEFGHJK"  # an invite made before links had their own token
    with Session(door.app.engine) as s:
        group = door.app.relay.group(s, "mardi")
        now = door.app.clock.now()
        s.add(
            Invite(
                group_id=group.id or 0,
                code_hash=invites.code_hash(door.app.relay.keys, old),
                created_by="admin",
                created_at=now,
                expires_at=now + invites.DEFAULT_EXPIRY,
            )
        )
        s.commit()

    assert (await door.client.get(f"/j/{typed}")).status_code == 404
    assert await opens(door, old, source("192.0.2.90"))


@pytest.fixture
async def untrusting(tmp_path: Path) -> AsyncIterator[Door]:
    """A door that trusts no proxy: every client is taken at the address it connects from."""
    async for d in run_door(tmp_path, CERCLE_TRUSTED_PROXIES="none"):
        yield d


@pytest.mark.anyio
async def test_a_forged_forwarded_for_from_an_untrusted_peer_counts_against_the_peer(
    untrusting: Door,
) -> None:
    d = untrusting
    link = d.invite()
    for n in range(d.web.config.joins_per_hour):
        await guess(d, source(f"203.0.113.{n}"))  # posing as many sources

    assert not await opens(d, link, source("192.0.2.1"))  # still the one peer, over its limit


@pytest.mark.anyio
async def test_the_surge_shows_in_the_doctor_and_the_health_page(door: Door) -> None:
    for n in range(SURGE):
        await guess(door, source(f"203.0.113.{n}"))
    app = door.app

    finding = await anyio.to_thread.run_sync(
        lambda: check_join_guesses(app.engine, app.clock.now())
    )
    everything = await run_checks(app, network=False)

    assert finding.status == "warn"
    assert finding.detail["refused_last_hour"] == {"web": SURGE}
    summary, fix = finding.text("en")
    assert summary.startswith(f"{SURGE} join attempts were refused in the last hour (web {SURGE})")
    assert fix is not None and "Joining still works" in fix
    french, _ = finding.text("fr")
    assert french.startswith(f"{SURGE} tentatives") and french != summary
    assert [f.status for f in everything if f.check == "join_guesses"] == ["warn"]
    # It only shows: a valid link still works.
    assert await opens(door, door.invite(), source("192.0.2.80"))


def test_a_quiet_day_is_ok_in_the_doctor(phones: Room) -> None:
    finding = check_join_guesses(phones.engine, phones.clock.now())

    assert finding.status == "ok"
    assert finding.text("en")[0].startswith("0 join attempts were refused in the last 24 hours")


def test_counts_add_up_per_door_and_hour_on_each_database(db_url: str) -> None:
    engine = make_engine(db_url)
    now = datetime(2026, 12, 6, 4, 30, tzinfo=UTC)
    for at, where in [
        (now, "web"),
        (now, "web"),
        (now, "signal"),
        (now - timedelta(hours=1), "sms"),
    ]:
        with transaction(engine) as s:
            guesses.count(s, where, at)
    with transaction(engine) as s:  # one session counting twice, as a flood in one request
        guesses.count(s, "web", now)
        guesses.count(s, "web", now)

    with Session(engine) as s:
        seen = guesses.recent(s, now)
        later = guesses.recent(s, now + timedelta(hours=2))
    engine.dispose()

    assert seen.last_hour == {"web": 4, "signal": 1, "sms": 1} and seen.day_total == 6
    assert later.last_hour == {} and later.day_total == 6


def test_the_purge_forgets_senders_after_an_hour_and_counts_after_two_days(
    phones: Room,
) -> None:
    room = phones
    room.stranger("guesser").says("JOIN ABCDEFGHJKMN")
    room.clock.advance(hours=2)
    with room.session() as s:
        keys_before = {a.key for a in s.exec(select(JoinAttempt)).all()}

    jobs.purge(room.relay, room.clock.now())
    with room.session() as s:
        kept = {a.key for a in s.exec(select(JoinAttempt)).all()}
    room.clock.advance(days=2)
    jobs.purge(room.relay, room.clock.now())

    assert len(keys_before) == 2  # the sender's keyed hash, and the hour's count
    assert kept == {k for k in keys_before if k.startswith(guesses.PREFIX)}
    with room.session() as s:
        assert s.exec(select(JoinAttempt)).all() == []
