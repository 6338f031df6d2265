"""Web members and phone members in one group, through the real web process."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from relay.messages import InboundKind
from relay.storage.models import Role, WebCopy
from tests.web.door import Door

pytestmark = pytest.mark.anyio
ALICE, FAC = "+15145550121", "+15145550123"


async def test_a_web_member_joins_from_a_link_and_talks_with_a_phone_member(door: Door) -> None:
    await door.phone("alice", ALICE)
    web = await door.join()
    name = await door.welcomed(web)
    await door.until(lambda: f"{name} has joined the group." in door.texts_of("alice"))

    assert (await web.says("hello from the library")).status_code == 204
    await door.until(lambda: f"{name}: hello from the library" in door.texts_of("alice"))
    await door.phone_says("alice", "welcome!")

    await door.until(lambda: any(t.endswith(": welcome!") for t in web.texts))
    assert "hello from the library" in web.texts  # their own words, on their own page


async def test_two_web_members_see_each_other_only_by_pseudonym(door: Door) -> None:
    one, two = await door.join(), await door.join()
    one_name, two_name = await door.welcomed(one), await door.welcomed(two)

    await one.says("hi two")

    await door.until(lambda: f"{one_name}: hi two" in two.texts)
    assert one_name != two_name
    assert one.token not in str(two.seen) and two.token not in str(one.seen)


async def test_copies_are_wiped_once_the_browser_has_them(door: Door) -> None:
    await door.phone("alice", ALICE)
    web = await door.join()
    await door.welcomed(web)
    await door.phone_says("alice", "read me")
    await door.until(lambda: any(t.endswith(": read me") for t in web.texts))

    def left() -> int:
        with Session(door.app.engine) as s:
            return len(s.exec(select(WebCopy)).all())

    await door.until(lambda: left() == 0)


async def test_order_holds_for_a_burst(door: Door) -> None:
    await door.phone("alice", ALICE)
    web = await door.join()
    await door.welcomed(web)

    for i in range(8):
        await door.phone_says("alice", f"burst {i}")

    await door.until(lambda: sum("burst" in t for t in web.texts) == 8)
    got = [t.split("burst ")[1] for t in web.texts if "burst" in t]
    assert got == [str(i) for i in range(8)]


async def test_a_facilitator_removes_a_web_member(door: Door) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)
    web = await door.join()
    name = await door.welcomed(web)

    await door.phone_says("fac", f"/remove {name}")

    await door.until(lambda: web.ended)
    assert any("removed you from the group" in t for t in web.texts)
    assert (await web.says("still here?")).status_code in (401, 410)
    assert all("still here?" not in t for t in door.texts_of("fac"))


async def test_a_muted_web_member_is_held_back_and_told(door: Door) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)
    web = await door.join()
    name = await door.welcomed(web)
    await door.phone_says("fac", f"/mute {name} 10m")
    await door.until(lambda: any("muted you" in t for t in web.texts))

    await web.says("can anyone hear me")

    await door.until(lambda: any("was not sent to the group" in t for t in web.texts))
    assert all("can anyone hear me" not in t for t in door.texts_of("fac"))


async def test_a_phone_members_delete_removes_the_copy_from_the_page(door: Door) -> None:
    await door.phone("alice", ALICE)
    web = await door.join()
    await door.welcomed(web)
    ref = await door.phone_says("alice", "oops, wrong group")
    await door.until(lambda: any("wrong group" in t for t in web.texts))
    copy_ref = next(e["ref"] for e in web.seen if "wrong group" in str(e["text"]))

    await door.phone_says("alice", None, InboundKind.DELETE, delete_ref=ref)

    await door.until(
        lambda: any(e["kind"] == "delete" and e["target"] == copy_ref for e in web.seen)
    )


async def test_commands_work_from_the_page_and_who_shows_web(door: Door) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)
    web = await door.join()
    name = await door.welcomed(web)

    await door.phone_says("fac", "/who")

    await door.until(lambda: any(name in t and "web" in t for t in door.texts_of("fac")))
    await web.says("/help")
    await door.until(lambda: any("/leave" in t for t in web.texts if t != "/help"))


async def test_a_web_member_can_be_a_facilitator(door: Door) -> None:
    await door.phone("alice", ALICE)
    code = door.invite(role=Role.FACILITATOR)
    web = await door.join(code)
    await door.welcomed(web)
    alice = door.texts_of("alice")[0]
    del alice

    await web.says("/who")

    await door.until(lambda: any("last active" in t for t in web.texts))


async def test_invite_gives_a_facilitator_the_private_link_too(door: Door) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)

    await door.phone_says("fac", "/invite 2h")

    await door.until(lambda: any(f"{door.base}/j/" in t for t in door.texts_of("fac")))
    reply = next(t for t in door.texts_of("fac") if f"{door.base}/j/" in t)
    link = re.search(rf"{re.escape(door.base)}/j/([A-Za-z0-9_-]+)", reply)
    code = re.search(r"JOIN ([A-Z0-9]{12})", reply)
    assert link is not None and code is not None
    # The link carries its own long token, never the typed code.
    assert len(link.group(1)) >= 27 and code.group(1) not in link.group(1)
    web = await door.join(link.group(1))
    await door.welcomed(web)


async def test_a_facilitators_delete_removes_the_message_from_the_web_page(door: Door) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)
    await door.phone("alice", ALICE)
    web = await door.join()
    await door.welcomed(web)
    await door.phone_says("alice", "something that must go")
    await door.until(lambda: any("must go" in t for t in web.texts))
    await door.until(lambda: any("must go" in t for t in door.texts_of("fac")))
    on_fac = next(d for d in door.loop.inbox[FAC] if "must go" in d.text)
    copy_ref = next(e["ref"] for e in web.seen if "must go" in str(e["text"]))

    await door.phone_says("fac", "/delete", quote_ref=on_fac.ref, quote_text=on_fac.text)
    await door.until(
        lambda: any(e["kind"] == "delete" and e["target"] == copy_ref for e in web.seen)
    )


async def test_a_facilitator_deletes_a_web_members_message_everywhere(door: Door) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)
    author, reader = await door.join(), await door.join()
    await door.welcomed(author)
    await door.welcomed(reader)
    await author.says("a message to take back")
    await door.until(lambda: any("take back" in t for t in reader.texts))
    await door.until(lambda: any("take back" in t for t in door.texts_of("fac")))
    on_fac = next(d for d in door.loop.inbox[FAC] if "take back" in d.text)
    copy_ref = next(e["ref"] for e in reader.seen if "take back" in str(e["text"]))

    await door.phone_says("fac", "/delete", quote_ref=on_fac.ref, quote_text=on_fac.text)

    await door.until(
        lambda: any(e["kind"] == "delete" and e["target"] == copy_ref for e in reader.seen)
    )


async def test_delete_name_all_takes_an_intruders_words_off_every_page_and_phone(
    door: Door,
) -> None:
    await door.phone("fac", FAC, Role.FACILITATOR)
    await door.phone("alice", ALICE)
    intruder, reader = await door.join(), await door.join()
    name = await door.welcomed(intruder)
    await door.welcomed(reader)
    for i in range(5):  # each send its own nonce: the page's retry key, or a duplicate
        await intruder.says(f"spam number {i}", nonce=f"spam-nonce-{i:04d}")
    await door.until(lambda: sum("spam number" in t for t in reader.texts) == 5)
    await door.until(lambda: sum("spam number" in t for t in door.texts_of("alice")) == 5)
    on_page = {e["ref"] for e in reader.seen if "spam number" in str(e["text"])}
    on_phone = {d.ref for d in door.loop.inbox[ALICE] if "spam number" in d.text}

    await door.phone_says("fac", f"/delete {name} all")

    await door.until(lambda: {e["target"] for e in reader.seen if e["kind"] == "delete"} == on_page)
    await door.until(
        lambda: {d.delete_ref for d in door.loop.inbox[ALICE] if d.delete_ref} == on_phone
    )
    await door.until(lambda: any(t.startswith("Removed 5 messages") for t in door.texts_of("fac")))
