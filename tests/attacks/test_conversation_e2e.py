"""A whole mixed Signal/SMS conversation, logged at DEBUG as a process would log it; then the
logs and the database file are searched for every number, UUID, profile name, file name and
message text it involved.

Every text anyone typed carries a marker ``zq-<word>`` (no hex reference or code contains a q),
so one search for ``zq`` finds any message text that reached a log line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.attacks.conftest import Captured
from tests.e2e.test_mixed_group import (
    ALICE,
    ALICE_UUID,
    BOB,
    FAC,
    FAC_UUID,
    ORG,
    PROFILE_NAMES,
    PUBLIC,
    World,
    enroll_everyone,
)
from tests.fakes.signal_server import ORG_UUID

pytestmark = pytest.mark.anyio

STRANGER, STRANGER_UUID = "+15145550141", "7d1f6a52-0000-4000-8000-000000000041"
STRANGER_PROFILE = "Rodrigue Stranger"
PHOTO_NAME = "IMG_0042_Tremblay_maison.jpg"


def number_forms(e164: str) -> list[str]:
    """A NANP number as people and libraries write it."""
    national = e164[2:]
    return [
        e164,
        e164[1:],
        national,
        f"{national[:3]}-{national[3:6]}-{national[6:]}",
        f"{national[:3]} {national[3:6]} {national[6:]}",
        f"({national[:3]}) {national[3:6]}-{national[6:]}",
    ]


SECRETS = [
    *(form for n in (ALICE, BOB, FAC, STRANGER, ORG) for form in number_forms(n)),
    *(u for uuid in (ALICE_UUID, FAC_UUID, STRANGER_UUID, ORG_UUID) for u in (uuid, uuid.upper())),
    *(u.replace("-", "") for u in (ALICE_UUID, FAC_UUID, STRANGER_UUID)),
    *PROFILE_NAMES,
    STRANGER_PROFILE,
    "IMG_0042",
    "Tremblay",
    "MONTREAL",  # Twilio's geo fields
    "zq",  # every message text
]
MARKERS = [f"zq-{w}" for w in (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "romeo", "sierra", "tango", "uniform",
    "victor",
)]  # fmt: skip


async def converse(w: World) -> None:
    """Everything people and providers do in a group's evening, good and bad."""
    await enroll_everyone(w)
    alice = w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0])
    fac = w.signal.member(FAC, FAC_UUID, profile_name=PROFILE_NAMES[1])
    a, b = w.name(ALICE), w.name(BOB)

    first = alice.says("Bonsoir zq-alpha, I left on 12 rue Exemple")
    await w.until(lambda: any("zq-alpha" in t for t in w.sms_texts(BOB)), "bob got it")
    await w.sms(BOB, "zq-bravo welcome, call me at 514-555-0199")
    await w.until(lambda: any("zq-bravo" in t for t in w.signal_texts(ALICE)), "alice got it")
    bobs_copy = w.signal.sent_to(ALICE)[-1].timestamp
    quoted = alice.quotes(bobs_copy, "zq-charlie thanks", quoted_text="zq-bravo")
    alice.mentions(fac, before="zq-delta merci ", after=" !")
    fac.reacts("💜", w.signal.sent_to(FAC)[-1].timestamp)
    alice.edits(first, "zq-echo edited")
    alice.deletes(quoted)
    alice.sends_photo("zq-foxtrot look", filename=PHOTO_NAME)
    alice.sets_timer(0)
    alice.types()
    w.signal.linked_device_says("zq-golf typed on a desktop", to=ALICE)
    w.signal.push(f"zq-hotel not json {ALICE}")
    w.signal.error_frame(f"zq-india receive failed for {ALICE}")
    alice.cannot_be_decrypted(f"zq-india no session with {ALICE} {ALICE_UUID}")
    w.signal.push({"envelope": {"sourceNumber": ALICE, "sourceName": PROFILE_NAMES[0]}})
    await w.until(lambda: any(m.media_urls for m in w.twilio.sent_to(BOB)), "photo by mms")

    fac.says("/who")
    fac.says(f"/reply {b} zq-juliet private")
    fac.says(f"/mute {a} 5m zq-kilo")
    fac.says(f"/unmute {a}")
    await w.sms(BOB, "/staff zq-lima I need to talk")
    await w.sms(BOB, "/whoami")
    alice.says("/frobnicate zq-mike")
    await w.until(lambda: any("zq-lima" in t for t in w.signal_texts(FAC)), "staff got it")


async def misbehave(w: World) -> None:
    """Strangers, forgers, malformed input, and provider failures whose texts quote numbers."""
    alice = w.signal.member(ALICE, ALICE_UUID, profile_name=PROFILE_NAMES[0])
    fac = w.signal.member(FAC, FAC_UUID, profile_name=PROFILE_NAMES[1])
    a = w.name(ALICE)
    w.signal.member(STRANGER, STRANGER_UUID, profile_name=STRANGER_PROFILE).says("zq-november")
    await w.sms(STRANGER, "/help zq-oscar")
    forged = w.twilio.inbound(f"{PUBLIC}/twilio/sms", BOB, "zq-papa forged")
    await w.web.post(forged.path_and_query, content=forged.body, headers=forged.headers("Zm9v"))
    await w.twilio.inbound(f"{PUBLIC}/twilio/sms", f"x{BOB}", "zq-romeo").post(w.web)
    await w.web.post(
        "/twilio/sms",
        content=f"From={BOB}&Body=zq-sierra".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    sid = next(m.sid for m in w.twilio.sent_to(BOB) if "zq-alpha" in m.body)
    await w.twilio.status_callback(sid, "undelivered", error_code=30003).post(w.web)
    w.signal.fail_next_send(500, {"error": f"send to {ALICE} failed: zq-tango"})  # retried
    w.signal.fail_recipient(ALICE, "IDENTITY_FAILURE")
    await w.sms(BOB, "zq-uniform held for alice")
    await w.until(lambda: any("safety number" in t for t in w.signal_texts(FAC)), "staff told")
    fac.says(f"/trust {a}")
    await w.until(lambda: any("zq-uniform" in t for t in w.signal_texts(ALICE)), "released")
    w.twilio.fail_for(BOB, status=400, code=21610)
    alice.says("zq-victor after stop")
    await w.until(lambda: any("texted STOP" in t for t in w.signal_texts(FAC)), "opted out")
    await w.sms(BOB, "STOP")
    await w.sms(BOB, "START")
    await w.until(lambda: any("texted START" in t for t in w.signal_texts(FAC)), "back")


async def test_a_whole_conversation_logs_no_identifier_and_no_text(
    configured: Captured, world: World
) -> None:
    await converse(world)
    await misbehave(world)

    assert len(configured.raw) > 50, "the conversation logged almost nothing"
    for logger, text in configured.raw:
        for secret in SECRETS:
            assert secret not in text, (logger, secret, text[:200])
    written = configured.written
    for secret in SECRETS:
        assert secret not in written, secret
    assert not re.search(r"\d{3}\D{0,3}\d{3}\D{0,3}\d{4}", written.replace("[redacted]", ""))
    # ...and the log still says what happened, for the operator. A garbled frame reaches the
    # REST client's frame parser; signal-cli's socket reader skips a garbled line itself.
    garbled = {
        "rest": ("signal frame dropped: unparseable", "signal frame dropped: error_frame"),
        "daemon": ("signal-cli sent a line that is not JSON; skipped",),
    }[world.signal.kind]
    for expected in (
        *garbled,
        "relayed to",
        "signal frame dropped: sync",
        "signal frame dropped: exception_frame",
        "inbound refused: 403 bad signature",
        "inbound refused: 400",
        "inbound dropped: unknown sender",
        "sms send failed",
    ):
        assert expected in written, expected


async def test_a_whole_conversation_leaves_no_identifier_or_text_in_the_database_file(
    world: World,
) -> None:
    # Before any retention job ran (it wipes what is sealed, too): what the files hold in
    # clear. Numbers, UUIDs and bodies are only ever written sealed.
    await converse(world)
    await misbehave(world)
    world.app.engine.dispose()

    url = world.app.settings.database_url
    files = list(Path(url.removeprefix("sqlite:///")).parent.glob("cercle.db*"))
    raw = b"".join(f.read_bytes() for f in files)
    assert len(raw) > 50_000
    for secret in [s for s in SECRETS if s != "zq"] + MARKERS:  # two bytes would occur by chance
        for encoded in {secret.encode(), secret.encode("utf-16-le")}:
            assert encoded not in raw, secret
