"""End to end: Cercle's real worker and web app between a fake Signal server and a fake Twilio.

Members on Signal and on SMS share one group. Everything between the fakes is real: settings,
bootstrap, database, encryption, the receive loop, webhooks with real signatures, the outbox
and the delivery engine. After each test, no member has received another's number, UUID,
profile name or original file name.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from PIL import Image
from sqlmodel import Session, select

from cercle.bootstrap import App, bootstrap
from cercle.providers import signal_receiver
from cercle.settings import Settings
from cercle.web import create_app
from cercle.worker import twilio_purge_loop
from relay.delivery.sender import pending_count
from relay.groups import guesses
from relay.messages import Channel
from relay.service.relay import GroupSettings
from relay.storage import media_links
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import MemberState, Outbox, Role
from tests.fakes.signal_cli_daemon import run_fake_signal_cli_daemon
from tests.fakes.signal_server import FakeSignalServer, run_fake_signal_server
from tests.fakes.twilio_server import FakeTwilio

PUBLIC = "https://relay.example.org"
ORG = "+15145550120"
ALICE, ALICE_UUID = "+15145550121", "7d1f6a52-0000-4000-8000-000000000021"
FAC, FAC_UUID = "+15145550123", "7d1f6a52-0000-4000-8000-000000000023"
BOB = "+15145550122"
PROFILE_NAMES = ("Alice Tremblay", "Fac Gagnon")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(params=["rest", "daemon"])
def signal(request: pytest.FixtureRequest) -> Iterator[FakeSignalServer]:
    """Signal, reached through signal-cli-rest-api or through signal-cli's own daemon."""
    run = run_fake_signal_cli_daemon if request.param == "daemon" else run_fake_signal_server
    with run(ORG) as fake:
        yield fake  # type: ignore[misc]
        assert fake.violations == []


@dataclass
class World:
    """The deployment under test and the two fake providers around it."""

    app: App
    signal: FakeSignalServer
    twilio: FakeTwilio
    web: httpx.AsyncClient

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.02)
        del what

    async def sms(self, from_: str, body: str, **kw: object) -> httpx.Response:
        webhook = self.twilio.inbound(f"{PUBLIC}/twilio/sms", from_, body, **kw)  # type: ignore[arg-type]
        return await webhook.post(self.web)

    def signal_texts(self, number: str) -> list[str]:
        return [m.message for m in self.signal.sent_to(number)]

    def sms_texts(self, number: str) -> list[str]:
        return [m.body for m in self.twilio.sent_to(number)]

    def name(self, number: str) -> str:
        for m in self.app.relay.roster("mardi"):
            if self.app.relay.address_of(m) == number:
                assert m.pseudonym
                return m.pseudonym
        raise AssertionError("not enrolled")

    def recorded(self, ref: int | str) -> bool:
        """Whether the relay has written down the copy the provider knows as ``ref`` (Signal's
        timestamp, Twilio's SID): a phone can quote a copy a moment before the worker records it."""
        with Session(self.app.engine) as s:
            found = s.exec(select(Outbox.id).where(Outbox.provider_ref == str(ref)))
            return found.first() is not None

    def check_no_leaks(self) -> None:
        secrets = {
            ALICE: "alice",
            ALICE_UUID: "alice",
            FAC: "fac",
            FAC_UUID: "fac",
            BOB: "bob",
            "IMG_0042": "alice",
            **dict.fromkeys(PROFILE_NAMES, "x"),
        }
        received = {
            "alice": self.signal_texts(ALICE),
            "fac": self.signal_texts(FAC),
            "bob": self.sms_texts(BOB),
        }
        files = [f.filename for m in self.signal.sent for f in m.files]
        for who, texts in received.items():
            for value, owner in secrets.items():
                if owner != who:
                    assert all(value not in t for t in texts), f"{who} got {owner}'s id"
        assert all("IMG_0042" not in f for f in files)
        for m in self.signal.sent:
            assert m.body.get("quote_author") in (None, ORG, m.recipient)


def providers_env(signal: FakeSignalServer, twilio: FakeTwilio, public: str) -> dict[str, str]:
    """The variables of a deployment with Signal and SMS on, reaching the two fakes."""
    return {
        "CERCLE_DATA_KEY": generate_key(),
        "CERCLE_ORG_NAME": "Maison Exemple",
        **(
            {"SIGNAL_CLI": signal.target}
            if signal.kind == "daemon"
            else {"SIGNAL_SERVICE": signal.service}
        ),
        "SIGNAL_NUMBER": ORG,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_NUMBER": ORG,
        "TWILIO_API_BASE": twilio.base_url,
        "PUBLIC_BASE_URL": public,
        # Pacing has its own tests; here it would only make the conversation slow.
        "CERCLE_SIGNAL_RATE": "200",
        "CERCLE_SIGNAL_BURST": "50",
        "CERCLE_SMS_RATE": "200",
        "CERCLE_SMS_BURST": "50",
    }


@pytest.fixture
async def world(
    tmp_path: Path, signal: FakeSignalServer, twilio: FakeTwilio
) -> AsyncIterator[World]:
    twilio.messages.clear()
    settings = Settings.from_env(
        environ={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
            **providers_env(signal, twilio, PUBLIC),
        },
        dotenv_path=tmp_path / "none.env",
    )
    app = bootstrap(settings)
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=86400, allow_media=True))
    receiver = signal_receiver(app.providers, app.relay)
    assert receiver is not None and app.deliverer is not None
    stop = anyio.Event()
    web_app = create_app(app)
    async with anyio.create_task_group() as tg, web_app.router.lifespan_context(web_app):
        tg.start_soon(app.deliverer.run, stop, 0.02)
        tg.start_soon(receiver.run)
        tg.start_soon(twilio_purge_loop(app, 0.1), stop)
        transport = httpx.ASGITransport(app=web_app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as web:
            w = World(app, signal, twilio, web)
            await w.until(lambda: signal.subscribed > 0, "receiver connected")
            yield w
            w.check_no_leaks()
        stop.set()
        receiver.stop()
    app.close()


async def enroll_everyone(w: World) -> None:
    relay = w.app.relay
    # Their phones exist on Signal before an admin enrolls them (the fake maps UUID → number).
    w.signal.member(FAC, FAC_UUID, profile_name=PROFILE_NAMES[1])
    w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0])
    await anyio.to_thread.run_sync(
        lambda: relay.enroll(FAC, "mardi", Role.FACILITATOR, "en", Channel.SIGNAL, uuid=FAC_UUID)
    )
    await anyio.to_thread.run_sync(
        lambda: relay.enroll(ALICE, "mardi", Role.MEMBER, "en", Channel.SIGNAL, uuid=ALICE_UUID)
    )
    await anyio.to_thread.run_sync(
        lambda: relay.enroll(BOB, "mardi", Role.MEMBER, "en", Channel.SMS)
    )
    await w.until(
        lambda: len(w.sms_texts(BOB)) >= 5 and len(w.signal_texts(ALICE)) >= 4, "welcome texts"
    )
    w.signal.member(FAC, FAC_UUID, profile_name=PROFILE_NAMES[1]).says("AGREE")
    await w.until(
        lambda: any("You are now in the group" in t for t in w.signal_texts(FAC)), "fac agreed"
    )
    w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0]).says("AGREE")
    await w.until(
        lambda: any("You are now in the group" in t for t in w.signal_texts(ALICE)), "alice agreed"
    )
    assert (await w.sms(BOB, "AGREE")).status_code == 200
    await w.until(
        lambda: any("You are now in the group" in t for t in w.sms_texts(BOB)), "bob agreed"
    )


@pytest.mark.anyio
async def test_signal_and_sms_members_talk_both_ways(world: World) -> None:
    w = world
    await enroll_everyone(w)
    assert w.signal.timers == {FAC: 86400, ALICE: 86400}  # set before anything was relayed

    w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0]).says("hello from signal")
    alice = w.name(ALICE)
    await w.until(lambda: f"{alice}: hello from signal" in w.sms_texts(BOB), "sms got it")

    response = await w.sms(BOB, "hi from sms")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    bob = w.name(BOB)
    await w.until(lambda: f"{bob}: hi from sms" in w.signal_texts(ALICE), "signal got it")
    assert f"{bob}: hi from sms" in w.signal_texts(FAC)


@pytest.mark.anyio
async def test_sms_welcome_warns_that_sms_is_not_encrypted(world: World) -> None:
    await enroll_everyone(world)

    assert any("not encrypted" in t for t in world.sms_texts(BOB))
    assert not any("not encrypted" in t for t in world.signal_texts(ALICE))


@pytest.mark.anyio
async def test_a_photo_is_stripped_for_signal_and_goes_by_mms_to_sms(world: World) -> None:
    w = world
    await enroll_everyone(w)

    w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0]).sends_photo("look")
    alice = w.name(ALICE)
    await w.until(lambda: any(m.files for m in w.signal.sent_to(FAC)), "photo to fac")
    photo = next(m for m in w.signal.sent_to(FAC) if m.files).files[0]
    assert photo.content_type == "image/jpeg" and "IMG" not in photo.filename
    assert not Image.open(io.BytesIO(photo.data)).getexif()
    await w.until(lambda: any(m.media_urls for m in w.twilio.sent_to(BOB)), "mms to bob")
    mms = next(m for m in w.twilio.sent_to(BOB) if m.media_urls)
    assert mms.body == f"{alice}: look"
    (url,) = mms.media_urls
    assert url.startswith(f"{PUBLIC}/twilio/media/")
    if w.signal.kind == "rest":
        assert w.signal.deleted_attachments  # the server copy is gone
    else:
        # signal-cli's daemon cannot delete it: it stays in its data directory (docs/signal.md).
        assert w.signal.attachments

    # Twilio fetches the photo once; then it is gone, from the URL and from the database.
    path = url.removeprefix(PUBLIC)
    first, again = await w.web.get(path), await w.web.get(path)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert not Image.open(io.BytesIO(first.content)).getexif()
    assert again.status_code == 404
    assert media_links.hosted(w.app.engine) == 0


@pytest.mark.anyio
async def test_a_member_changing_their_timer_is_reset_before_the_next_relay(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice_phone = w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0])

    alice_phone.sets_timer(0)
    await w.until(lambda: any("reset your timer" in t for t in w.signal_texts(ALICE)), "told")
    assert w.signal.timers[ALICE] == 86400

    await w.sms(BOB, "after the reset")
    await w.until(lambda: any("after the reset" in t for t in w.signal_texts(ALICE)), "relayed")
    calls = [c for c in w.signal.timer_calls if w.signal.phone_of(c["recipient"]) == ALICE]
    assert calls[-1]["expiration_in_seconds"] == 86400


@pytest.mark.anyio
async def test_stop_and_start_round_trip(world: World) -> None:
    w = world
    await enroll_everyone(w)
    bob = w.name(BOB)

    await w.sms(BOB, "STOP")
    await w.until(lambda: any("texted STOP" in t for t in w.signal_texts(FAC)), "staff told")
    before = len(w.sms_texts(BOB))
    w.signal.member(ALICE, ALICE_UUID).says("while bob is away")
    await w.until(lambda: any("while bob is away" in t for t in w.signal_texts(FAC)), "fac")
    assert len(w.sms_texts(BOB)) == before
    assert all("STOP" not in t for t in w.signal_texts(ALICE))  # never rebroadcast

    await w.sms(BOB, "START")
    await w.until(lambda: any("texted START" in t for t in w.signal_texts(FAC)), "staff told")
    w.signal.member(ALICE, ALICE_UUID).says("welcome back")
    await w.until(lambda: any("welcome back" in t for t in w.sms_texts(BOB)), "bob again")
    states = {m.pseudonym: m.state for m in w.app.relay.roster("mardi")}
    assert states[bob] == MemberState.ACTIVE


@pytest.mark.anyio
async def test_final_statuses_delete_the_record_at_twilio(world: World) -> None:
    w = world
    await enroll_everyone(w)
    w.signal.member(ALICE, ALICE_UUID).says("to be deleted at twilio")
    await w.until(lambda: any("to be deleted" in t for t in w.sms_texts(BOB)), "sent")
    sid = next(m.sid for m in w.twilio.sent_to(BOB) if "to be deleted" in m.body)

    sent = w.twilio.status_callback(sid, "sent")
    late_sent = w.twilio.status_callback(sid, "sent")
    delivered = w.twilio.status_callback(sid, "delivered")  # the fake's final state
    for callback in (sent, delivered, late_sent, delivered):  # repeated, out of order
        assert (await callback.post(w.web)).status_code == 204

    await w.until(lambda: sid in w.twilio.deleted, "record deleted")


@pytest.mark.anyio
async def test_an_undelivered_sms_is_reported_to_staff_by_pseudonym(world: World) -> None:
    w = world
    await enroll_everyone(w)
    w.signal.member(ALICE, ALICE_UUID).says("will not arrive")
    await w.until(lambda: any("will not arrive" in t for t in w.sms_texts(BOB)), "sent")
    sid = next(m.sid for m in w.twilio.sent_to(BOB) if "will not arrive" in m.body)

    await w.twilio.status_callback(sid, "undelivered", error_code=30003).post(w.web)

    bob = w.name(BOB)
    await w.until(
        lambda: any(f"could not reach {bob}" in t for t in w.signal_texts(FAC)), "reported"
    )


@pytest.mark.anyio
async def test_a_forged_webhook_changes_nothing(world: World) -> None:
    w = world
    await enroll_everyone(w)
    webhook = w.twilio.inbound(f"{PUBLIC}/twilio/sms", BOB, "forged")

    response = await w.web.post(
        webhook.path_and_query,
        content=webhook.body,
        headers=webhook.headers(signature="bm90IGEgc2lnbmF0dXJl"),
    )

    assert response.status_code == 403
    # Refused before anything was written: once the outbox is empty nothing more can come.
    await w.until(lambda: pending_count(w.app.engine) == 0, "every copy sent")
    assert all("forged" not in t for t in w.signal_texts(ALICE))


@pytest.mark.anyio
async def test_a_changed_safety_number_holds_messages_until_staff_trust_it(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice = w.name(ALICE)
    w.signal.fail_recipient(ALICE, "IDENTITY_FAILURE")

    await w.sms(BOB, "held for alice")
    await w.until(
        lambda: any("safety number changed" in t for t in w.signal_texts(FAC)), "staff alerted"
    )
    assert all("held for alice" not in t for t in w.signal_texts(ALICE))

    w.signal.member(FAC, FAC_UUID).says(f"/trust {alice}")
    await w.until(lambda: any("held for alice" in t for t in w.signal_texts(ALICE)), "released")
    assert w.signal.trusted


@pytest.mark.anyio
async def test_the_exit_word_works_from_signal_and_from_sms(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice_phone = w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0])
    alice_phone.says("/exitword Tournesol")
    await w.sms(BOB, "/exitword Parapluie")
    await w.until(lambda: any("exit word is set" in t for t in w.signal_texts(ALICE)), "set")
    await w.until(lambda: any("exit word is set" in t for t in w.sms_texts(BOB)), "set")

    alice_phone.says("tournesol")
    await w.sms(BOB, "PARAPLUIE")

    await w.until(lambda: w.signal_texts(ALICE)[-1] == "Subscription cancelled.", "signal")
    await w.until(lambda: w.sms_texts(BOB)[-1] == "Subscription cancelled.", "sms")
    await w.until(
        lambda: sum("sent their exit word" in t for t in w.signal_texts(FAC)) == 2, "staff told"
    )
    assert [m.role for m in w.app.relay.roster("mardi")] == [Role.FACILITATOR]


@pytest.mark.anyio
async def test_a_survivor_joins_by_texting_an_invite_code(world: World) -> None:
    w = world
    await enroll_everyone(w)
    newcomer = "+15145550124"
    w.signal.member(FAC, FAC_UUID).says("/invite")
    await w.until(lambda: any("Invite code" in t for t in w.signal_texts(FAC)), "code")
    found = re.search(r"JOIN ([A-Z0-9]{12})", w.signal_texts(FAC)[-1])
    assert found is not None

    assert (await w.sms(newcomer, "REJOINDRE 2345678923")).status_code == 200  # wrong: silence
    assert (await w.sms(newcomer, f"REJOINDRE {found.group(1)}")).status_code == 200

    await w.until(lambda: any("ACCEPTE" in t for t in w.sms_texts(newcomer)), "welcome")
    assert sum("ACCEPTE" in t for t in w.sms_texts(newcomer)) == 1
    await w.until(
        lambda: any("used an invite code" in t for t in w.signal_texts(FAC)), "staff told"
    )


@pytest.mark.anyio
async def test_a_new_account_on_a_members_recycled_number_gets_nothing(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice = w.name(ALICE)
    stranger = w.signal.member(None, "7d1f6a52-0000-4000-8000-000000000099")
    # Signal gave Alice's old number to someone else, with a new account.
    stranger.number = ALICE

    stranger.says("hello? who is this group")
    await w.until(
        lambda: any("different Signal account" in t for t in w.signal_texts(FAC)), "staff told"
    )
    await w.sms(BOB, "still here")
    await w.until(lambda: any("still here" in t for t in w.signal_texts(ALICE)), "relayed")

    assert all("who is this group" not in t for t in w.sms_texts(BOB))
    to_alices_number = [m for m in w.signal.sent if w.signal.phone_of(m.recipient) == ALICE]
    assert to_alices_number and all(m.recipient == ALICE_UUID for m in to_alices_number)
    assert alice in next(t for t in w.signal_texts(FAC) if "different Signal account" in t)


@pytest.mark.anyio
async def test_a_facilitator_takes_a_message_back_from_signal_and_counts_sms(world: World) -> None:
    w = world
    await enroll_everyone(w)
    leak = "my neighbour Marie Tremblay saw me"
    fac_phone = w.signal.member(FAC, FAC_UUID, profile_name=PROFILE_NAMES[1])
    w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0]).says(leak)
    await w.until(lambda: any(leak in t for t in w.sms_texts(BOB)), "bob has it")
    await w.until(lambda: any(leak in m.message for m in w.signal.sent_to(FAC)), "fac has it")
    copy = next(m for m in w.signal.sent_to(FAC) if leak in m.message)
    await w.until(lambda: w.recorded(copy.timestamp), "the relay wrote down fac's copy")
    # SMS and Signal copies go out in separate batches: wait until Bob's SMS is written down
    # as sent too, or the removal would rightly count it as stopped rather than delivered.
    bob_sms = next(m for m in w.twilio.sent_to(BOB) if leak in m.body)
    await w.until(lambda: w.recorded(bob_sms.sid), "the relay wrote down bob's SMS")
    bob_had = len(w.sms_texts(BOB))

    fac_phone.quotes(copy.timestamp, "/delete a real name", quoted_text=copy.message)

    await w.until(lambda: w.signal.remote_deletes != [], "remote delete")
    # One DELETE /v1/remote-delete/{number} per Signal copy, its body valid for the spec.
    assert w.signal.remote_deletes == [{"recipient": copy.recipient, "timestamp": copy.timestamp}]
    await w.until(
        lambda: any("removed your message" in t for t in w.signal_texts(ALICE)), "author told"
    )
    await w.until(lambda: any("on SMS had already" in t for t in w.signal_texts(FAC)), "counted")
    assert len(w.sms_texts(BOB)) == bob_had


@pytest.mark.anyio
async def test_a_report_from_signal_reaches_staff_with_the_quoted_words(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice_phone = w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0])
    await w.sms(BOB, "you all deserve it")
    bob = w.name(BOB)
    await w.until(lambda: any("deserve it" in m.message for m in w.signal.sent_to(ALICE)), "copy")
    copy = next(m for m in w.signal.sent_to(ALICE) if "deserve it" in m.message)
    await w.until(lambda: w.recorded(copy.timestamp), "the relay wrote down alice's copy")
    bob_had = len(w.sms_texts(BOB))

    alice_phone.quotes(copy.timestamp, "/report cruel", quoted_text=copy.message)

    await w.until(lambda: any(t.startswith("Report from") for t in w.signal_texts(FAC)), "staff")
    note = next(t for t in w.signal_texts(FAC) if t.startswith("Report from"))
    assert f"about a message by {bob}" in note and f"“{bob}: you all deserve it”" in note
    await w.until(lambda: any("Your report went" in t for t in w.signal_texts(ALICE)), "thanks")
    assert len(w.sms_texts(BOB)) == bob_had


@pytest.mark.anyio
async def test_a_flood_of_wrong_codes_leaves_valid_codes_working_by_sms_and_signal(
    world: World,
) -> None:
    w = world
    await enroll_everyone(w)
    for _ in range(2):
        w.signal.member(FAC, FAC_UUID).says("/invite")
    await w.until(lambda: sum("Invite code" in t for t in w.signal_texts(FAC)) == 2, "codes")
    by_sms, by_signal = (
        re.search(r"JOIN ([A-Z0-9]{12})", t).group(1)  # type: ignore[union-attr]
        for t in w.signal_texts(FAC)
        if "Invite code" in t
    )
    # An abuser: 30 SMS numbers and 30 Signal accounts, three wrong guesses each (180 in all,
    # far beyond any lock for everyone together), every one met with silence.
    for n in range(30):
        for i in range(3):
            assert (
                await w.sms(f"+1438555{101 + n:04d}", f"JOIN 23456789{n:02d}{i:02d}")
            ).status_code == 200
            w.signal.member(None, f"7d1f6a52-0000-4000-8000-0000000009{n:02d}").says(
                f"JOIN 34567892{n:02d}{i:02d}"
            )
    newcomer_sms, newcomer_signal = "+15145550131", "+15145550132"

    assert (await w.sms(newcomer_sms, f"JOIN {by_sms}")).status_code == 200
    w.signal.member(newcomer_signal, "7d1f6a52-0000-4000-8000-000000000132").says(
        f"JOIN {by_signal}"
    )

    await w.until(lambda: any("AGREE" in t for t in w.sms_texts(newcomer_sms)), "sms welcome")
    await w.until(
        lambda: any("AGREE" in t for t in w.signal_texts(newcomer_signal)), "signal welcome"
    )
    await w.until(
        lambda: sum("used an invite code" in t for t in w.signal_texts(FAC)) == 2, "staff told"
    )
    assert all(not w.sms_texts(f"+1438555{101 + n:04d}") for n in range(30))
    with Session(w.app.engine) as s:
        seen = guesses.recent(s, w.app.clock.now())
    assert seen.last_hour == {"sms": 90, "signal": 90}  # every guess was read, and refused
