"""Video sessions on the organization's own Jitsi Meet: a fresh room at each session's start,
every agreed member's own muted link on every door, /video, and nothing kept afterwards."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from relay.delivery.outbox import open_payload
from relay.errors import CercleError
from relay.groups.video import check_server, member_link
from relay.messages import Channel
from relay.service.groups import set_schedule
from relay.service.jobs import run_due
from relay.service.video import set_video
from relay.storage.models import (
    VIDEO_ROOM_CONTEXT,
    WEB_COPY_CONTEXT,
    Group,
    OutboxBody,
    VideoLink,
    VideoRoom,
    WebCopy,
)
from tests.room import Person, Room

TORONTO = ZoneInfo("America/Toronto")
SERVER = "https://video.maison.example"
ROOM = re.compile(r"^[a-z2-7]{32}$")  # 160 bits over lower-case characters only


def jitsi_options(link: str) -> dict[str, object]:
    """The options Jitsi Meet reads after ``#``: split on ``&``, then on ``=``, the value
    URL-decoded and read as JSON; a value that is not JSON is dropped, as Jitsi does."""
    options: dict[str, object] = {}
    for part in urlsplit(link).fragment.split("&"):
        pieces = part.split("=")  # Jitsi keeps only what comes before a second "="
        try:
            options[pieces[0]] = json.loads(unquote(pieces[1]))
        except (IndexError, ValueError):
            continue
    return options


def links_in(texts: list[str]) -> list[str]:
    return [w for t in texts for w in t.split() if w.startswith(SERVER)]


def room_of(link: str) -> str:
    path = urlsplit(link).path
    assert path.count("/") == 1
    return path.lstrip("/")


def go_to(room: Room, local: str) -> None:
    """Move the clock to a Toronto wall-clock time, run the worker's jobs, deliver."""
    target = datetime.fromisoformat(local).replace(tzinfo=TORONTO).astimezone(UTC)
    room.later(seconds=(target - room.clock.now()).total_seconds())
    run_due(room.relay)
    room.deliver()


@pytest.fixture
def tuesdays(tmp_path: Path) -> Iterator[Room]:
    """A group meeting Tuesdays 19:00-20:30 Toronto time, by video, with members on Signal,
    SMS and the web door (the clock starts Tuesday, January 6, 2026, 14:00)."""
    room = Room(tmp_path, channel=Channel.SIGNAL, also=(Channel.SMS, Channel.WEB))
    room.relay.video_url = SERVER
    set_schedule(room.relay, room.group_name, add=("tue 19:00-20:30",), tz="America/Toronto")
    set_video(room.relay, room.group_name, True)
    yield room
    room.check_invariants()


def cast(room: Room) -> tuple[Person, Person, Person, Person]:
    alice = room.member("alice", uuid="6f1c2a8e-0000-4000-8000-000000000001")
    bruno = room.member("bruno", via=Channel.SMS, lang="fr")
    carla = room.member("carla", via=Channel.WEB)
    fac = room.facilitator("fac", uuid="6f1c2a8e-0000-4000-8000-000000000002")
    return alice, bruno, carla, fac


def test_every_agreed_member_gets_one_link_of_their_own_at_the_start_on_every_door(
    tuesdays: Room,
) -> None:
    alice, bruno, carla, fac = cast(tuesdays)
    dana = tuesdays.member("dana", agree=False)
    dana.new()

    go_to(tuesdays, "2026-01-06T18:59")
    assert [links_in(p.new()) for p in (alice, bruno, carla, fac)] == [[], [], [], []]

    go_to(tuesdays, "2026-01-06T19:00")
    go_to(tuesdays, "2026-01-06T19:05")  # the worker runs again: nothing more goes out

    got = {p.handle: links_in(p.new()) for p in (alice, bruno, carla, fac)}
    assert all(len(links) == 1 for links in got.values()), got
    assert links_in(dana.new()) == []
    rooms = {room_of(links[0]) for links in got.values()}
    assert len(rooms) == 1 and ROOM.match(rooms.pop())
    for person in (alice, bruno, carla, fac):
        link = got[person.handle][0]
        assert link.split("#")[0] == got["alice"][0].split("#")[0]  # only the fragment differs
        assert jitsi_options(link) == {
            "userInfo.displayName": person.name,
            "config.startWithVideoMuted": True,
            "config.startWithAudioMuted": True,
            "config.prejoinConfig.enabled": True,
        }


def test_the_link_says_in_each_language_what_video_shows_and_that_text_is_enough(
    tuesdays: Room,
) -> None:
    alice, bruno, _, _ = cast(tuesdays)

    go_to(tuesdays, "2026-01-06T19:00")

    english, french = alice.new()[-1], bruno.new()[-1]
    assert english.startswith("The video session has started.")
    for words in ("camera and microphone off", "your face", "may hear you", "text group"):
        assert words in english
    assert french.startswith("La séance vidéo commence.")
    for words in ("caméra et micro coupés", "votre visage", "entendre", "groupe texte"):
        assert words in french


def test_two_sessions_get_two_different_rooms(tuesdays: Room) -> None:
    alice, *_ = cast(tuesdays)

    go_to(tuesdays, "2026-01-06T19:00")
    first = links_in(alice.new())
    go_to(tuesdays, "2026-01-13T19:00")
    second = links_in(alice.new())

    assert len(first) == len(second) == 1
    assert room_of(first[0]) != room_of(second[0])


def test_video_resends_the_members_own_link_during_a_session(tuesdays: Room) -> None:
    alice, bruno, *_ = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T19:00")
    sent = links_in(alice.new())
    bruno.new()

    alice.says("/video")

    assert links_in(alice.new()) == sent
    assert bruno.new() == []


def test_someone_who_agrees_during_a_session_gets_their_link_after_the_welcome(
    tuesdays: Room,
) -> None:
    alice, *_ = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T19:00")
    sent = links_in(alice.new())
    emma = tuesdays.member("emma", agree=False)

    emma.agrees()

    texts = emma.new()
    assert texts[0].startswith("Thank you. You are now in the group as")
    assert len(links_in(texts)) == 1 and room_of(links_in(texts)[0]) == room_of(sent[0])
    assert jitsi_options(links_in(texts)[0])["userInfo.displayName"] == emma.name


def test_video_outside_a_session_says_there_is_none(tuesdays: Room) -> None:
    alice, bruno, *_ = cast(tuesdays)

    alice.says("/video")
    assert alice.new() == [
        "There is no video session now. The link comes here when the next one starts."
    ]

    go_to(tuesdays, "2026-01-06T19:00")
    go_to(tuesdays, "2026-01-06T20:30")  # the end
    bruno.new()
    bruno.says("/video")
    assert bruno.new() == [
        "Il n'y a pas de séance vidéo en ce moment. Le lien arrivera ici au début de la prochaine."
    ]


def test_video_in_a_group_that_does_not_meet_by_video_says_so_and_help_leaves_it_out(
    room: Room,
) -> None:
    alice = room.member("alice")

    alice.says("/video")
    assert alice.new() == ["This group does not meet by video. You are in the text group."]

    alice.says("/help")
    assert "/video" not in alice.new()[0]


def test_help_lists_video_in_a_group_that_meets_by_video(tuesdays: Room) -> None:
    alice, bruno, *_ = cast(tuesdays)

    alice.says("/help")
    bruno.says("/aide")

    assert "/video — your link to this session's video room, again" in alice.new()[0]
    assert "/video — " in bruno.new()[0]


def test_nothing_names_the_room_at_rest_or_in_logs_once_the_session_ends(
    tuesdays: Room, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, *_ = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T19:00")
    room = room_of(links_in(alice.new())[0])
    alice.says("/video")

    with tuesdays.session() as s:  # while it runs: sealed, never in clear
        stored = s.exec(select(VideoRoom)).one()
        assert tuesdays.keys.decrypt_text(stored.url_enc, VIDEO_ROOM_CONTEXT).endswith(room)
    assert room.encode() not in raw_database(tuesdays)

    go_to(tuesdays, "2026-01-06T20:30")

    with tuesdays.session() as s:
        assert s.exec(select(VideoRoom)).all() == []
        assert s.exec(select(VideoLink)).all() == []
        bodies = [b.payload_enc for b in s.exec(select(OutboxBody)).all() if b.payload_enc]
        opened = [json.dumps(open_payload(tuesdays.keys, b)) for b in bodies]
        copies = [
            tuesdays.keys.decrypt(c.payload_enc, WEB_COPY_CONTEXT.encode()).decode()
            for c in s.exec(select(WebCopy)).all()
            if c.payload_enc
        ]
    assert not [p for p in opened + copies if room in p]
    assert room.encode() not in raw_database(tuesdays)
    assert room not in caplog.text and SERVER not in caplog.text


def test_at_the_end_links_are_taken_back_where_a_door_can_and_unsent_ones_cancelled(
    tuesdays: Room,
) -> None:
    alice, bruno, _, _ = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T19:00")
    sent_to_alice = next(d for d in alice.inbox if SERVER in d.text)

    go_to(tuesdays, "2026-01-06T20:30")

    assert alice.inbox[-1].delete_ref == sent_to_alice.ref  # gone from the Signal phone
    assert all(d.delete_ref is None for d in bruno.inbox)  # an SMS cannot be taken back


def test_a_link_not_yet_sent_when_the_session_ends_is_never_sent(tuesdays: Room) -> None:
    alice, *_ = cast(tuesdays)
    with tuesdays.holding():
        go_to(tuesdays, "2026-01-06T19:00")
        tuesdays.clock.advance(minutes=90)
        run_due(tuesdays.relay)

    assert links_in(alice.new()) == []


def test_turning_video_off_during_a_session_ends_its_room(tuesdays: Room) -> None:
    alice, *_ = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T19:00")
    alice.new()

    set_video(tuesdays.relay, tuesdays.group_name, False)
    tuesdays.deliver()
    alice.says("/video")

    assert alice.new()[-1] == "This group does not meet by video. You are in the text group."
    with tuesdays.session() as s:
        assert s.exec(select(VideoRoom)).all() == []


def test_no_links_when_a_facilitator_closed_the_group_for_the_session(tuesdays: Room) -> None:
    alice, _, _, fac = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T18:00")
    fac.says("/close 3h")
    alice.new()

    go_to(tuesdays, "2026-01-06T19:00")

    assert links_in(alice.new()) == []


def test_turning_video_on_without_the_organizations_server_is_refused(room: Room) -> None:
    assert room.relay.video_url is None

    with pytest.raises(CercleError, match="CERCLE_VIDEO_URL") as refused:
        set_video(room.relay, room.group_name, True)

    assert "never uses a public video service" in refused.value.safe_message
    with room.session() as s:
        assert s.exec(select(Group)).one().video is False


def test_a_session_without_the_server_any_more_sends_nothing_and_logs_no_one(
    tuesdays: Room, caplog: pytest.LogCaptureFixture
) -> None:
    alice, *_ = cast(tuesdays)
    tuesdays.relay.video_url = None

    go_to(tuesdays, "2026-01-06T19:00")

    assert links_in(alice.new()) == []
    assert "CERCLE_VIDEO_URL is not set" in caplog.text
    assert "mardi" not in caplog.text


@pytest.mark.parametrize(
    "bad",
    [
        "http://video.maison.example",
        "video.maison.example",
        "https://",
        "https://video.maison.example/?room=x",
        "https://video.maison.example/#x",
        "https://user:pw@video.maison.example",
        "https://video.maison .example",
    ],
)
def test_the_server_must_be_a_plain_https_address(bad: str) -> None:
    with pytest.raises(CercleError, match="CERCLE_VIDEO_URL"):
        check_server(bad)


def test_the_servers_address_may_have_a_path() -> None:
    assert check_server(" https://maison.example/video/ ") == "https://maison.example/video"


@pytest.mark.parametrize(
    "name",
    [
        'Zoé "Z"',
        "Iris Sage",
        "a&config.startWithVideoMuted=false",
        "x#y=z+w%20v",
        "</script><b>",
        "Ça va\\ ?",
        "🌿 Willow",
    ],
)
def test_odd_pseudonyms_reach_jitsi_whole_and_cannot_add_or_change_options(name: str) -> None:
    link = member_link(f"{SERVER}/abcdefghijklmnopqrstuvwxyz234567", name)

    assert jitsi_options(link)["userInfo.displayName"] == name
    assert jitsi_options(link)["config.startWithVideoMuted"] is True
    assert " " not in link and "+" not in urlsplit(link).fragment


@given(st.text(min_size=1, max_size=32))
def test_any_pseudonym_is_read_back_exactly(name: str) -> None:
    link = member_link(f"{SERVER}/abcdefghijklmnopqrstuvwxyz234567", name)

    options = jitsi_options(link)

    assert options["userInfo.displayName"] == name
    assert len(options) == 4


def raw_database(room: Room) -> bytes:
    return b"".join(p.read_bytes() for p in room.db_path.parent.glob("cercle.db*"))


@pytest.mark.postgres
def test_a_video_session_starts_and_ends_the_same_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    room = Room(tmp_path, database_url=pg_url, channel=Channel.SIGNAL, also=(Channel.SMS,))
    room.relay.video_url = SERVER
    set_schedule(room.relay, room.group_name, add=("tue 19:00-20:30",), tz="America/Toronto")
    set_video(room.relay, room.group_name, True)
    alice = room.member("alice", uuid="6f1c2a8e-0000-4000-8000-000000000001")
    bruno = room.member("bruno", via=Channel.SMS)

    go_to(room, "2026-01-06T19:00")
    go_to(room, "2026-01-06T19:01")
    assert [len(links_in(p.new())) for p in (alice, bruno)] == [1, 1]

    go_to(room, "2026-01-06T20:30")
    alice.says("/video")
    assert alice.new()[-1].startswith("There is no video session now.")
    with room.session() as s:
        assert s.exec(select(VideoRoom)).all() == []
        assert s.exec(select(VideoLink)).all() == []
    room.check_invariants()
    room.engine.dispose()


def test_a_key_rotation_during_a_session_keeps_its_room(tuesdays: Room) -> None:
    from relay.privacy.rotation import rotate
    from relay.storage.crypto import DataKeys
    from tests.test_rotation import rekey, rotating

    alice, *_ = cast(tuesdays)
    go_to(tuesdays, "2026-01-06T19:00")
    sent = links_in(alice.new())
    _, master = rotating(tuesdays)

    rotate(tuesdays.engine, tuesdays.keys)
    rekey(tuesdays, DataKeys.from_master(master))  # restarted without the old key
    alice.says("/video")

    assert links_in(alice.new()) == sent


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_link_message_stays_in_the_plain_sms_alphabet(lang: str) -> None:
    from bots.sms.segments import Encoding, encoding_of, segment_count
    from relay.groups.video import link_text, new_room_name, room_url

    link = member_link(room_url("https://video.example.org", new_room_name()), "Lavande")
    text = link_text(link).render(lang)

    assert encoding_of(text) == Encoding.GSM7  # one accent outside it would double the cost
    assert segment_count(text) <= 4
