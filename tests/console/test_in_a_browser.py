"""The console as staff use it, in chromium: setup link → passkey → sign-in → create a group
→ enrol a member → make an invite code → health → add a facilitator for the group → sign out,
once in each language, each page checked with axe-core. French runs on a phone-sized screen."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from cercle.health import CHECKS
from relay.language.i18n import T
from tests.browser import Live, assert_accessible, chromium, live, page_factory, screenshot
from tests.cli_support import invoke

__all__ = ["chromium", "live", "page_factory"]  # fixtures

pytestmark = pytest.mark.slow


def see_every_check(page: Any, heading: str) -> None:
    page.get_by_role("heading", name=heading).wait_for()  # the click's page may still be loading
    assert page.get_by_role("heading", name=heading).is_visible()
    findings = page.locator(".finding").all_inner_texts()
    assert [f.split(" · ")[1].split(":")[0] for f in findings] == list(CHECKS), findings
    assert all(f.is_visible() for f in page.locator(".finding").all())


def add_a_facilitator_for_mardi(page: Any, lang: str, checked: Callable[[str], None]) -> None:
    """On the staff page, add an account that sees only ``mardi``."""

    def t(msgid: str) -> str:
        return T(msgid).render(lang)

    page.get_by_role("link", name=t("Staff accounts")).click()
    page.get_by_label(t("Name (lower-case letters, digits, dots or dashes)")).fill(f"sam-{lang}")
    page.get_by_label("mardi").check()
    page.get_by_role("button", name=t("Add the account")).click()
    assert "/staff/setup/" in page.locator(".code").inner_text()
    assert_accessible(page)  # shows a setup link: no screenshot
    page.get_by_role("link", name=t("Back to the staff accounts")).click()
    assert page.get_by_role("row", name=f"sam-{lang}").get_by_text("mardi").is_visible()
    checked("accounts")


def staff_flow(live: Live, page: Any, lang: str, number: str) -> None:
    def t(msgid: str) -> str:
        return T(msgid).render(lang)

    def checked(name: str) -> None:
        assert_accessible(page)
        assert number[2:] not in page.content(), page.url  # never a member's number
        if lang == "en":
            screenshot(page, name)

    code, output = invoke("staff", "add", f"ana-{lang}", "--role", "admin", "--lang", lang)
    assert code == 0, output
    link = next(w for w in output.split() if "/staff/setup/" in w)

    page.goto(link)
    checked("setup")
    page.get_by_role("button", name=t("Create my passkey")).click()
    page.wait_for_url(re.compile(r"/staff/groups$"))

    page.get_by_role("button", name=t("Sign out")).click()
    page.wait_for_url(re.compile(r"/staff/signin"))
    checked("signin")
    page.get_by_role("button", name=t("Sign in with a passkey")).click()
    page.wait_for_url(re.compile(r"/staff/groups$"))
    checked("groups")

    page.get_by_label(t("Name (what staff call it; members do not see it)")).fill("mardi")
    page.get_by_label(t("Disappearing timer (for example 8h, 1d, 1w)")).fill("1d")
    page.get_by_role("button", name=t("Create the group")).click()
    page.wait_for_url(re.compile(r"done=created"))
    checked("group")

    page.get_by_role("link", name=t("Members"), exact=True).click()
    page.get_by_label(t("Phone number")).fill(number)
    page.get_by_role("button", name=t("Enrol"), exact=True).click()
    page.wait_for_url(re.compile(r"done=enrolled"))
    assert page.get_by_text("••••••••" + number[-2:]).is_visible()
    checked("members")

    page.get_by_role("link", name=t("Back to the group")).click()
    page.get_by_role("link", name=t("Invite codes")).click()
    page.get_by_role("button", name=t("Make the code")).click()
    code_text = page.locator(".code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{12}", code_text)
    assert f"JOIN {code_text}" in page.content() or f"REJOINDRE {code_text}" in page.content()
    checked("invite")

    page.get_by_role("link", name=t("Health")).click()
    see_every_check(page, t("Health"))
    checked("health")
    page.get_by_role("link", name=t("Audit trail")).click()
    assert page.get_by_text(f"staff:ana-{lang}").first.is_visible()
    checked("audit")

    add_a_facilitator_for_mardi(page, lang, checked)

    page.get_by_role("button", name=t("Sign out")).click()
    page.wait_for_url(re.compile(r"/staff/signin"))
    page.goto(f"{live.base}/staff/groups")
    page.wait_for_url(re.compile(r"/staff/signin"))
    page.goto(link)  # used: refused
    assert page.get_by_role("heading", name=t("This link does not work")).is_visible()


def test_a_staff_member_runs_a_group_in_english(live: Live, page_factory: Any) -> None:
    staff_flow(live, page_factory(), "en", "+15145550142")


def test_a_staff_member_runs_a_group_in_french_on_a_phone(live: Live, page_factory: Any) -> None:
    staff_flow(live, page_factory(390, 844, "fr-CA"), "fr", "+15145550143")


def test_the_other_pages_are_accessible_and_keyboard_first(live: Live, page_factory: Any) -> None:
    from relay.messages import Channel
    from relay.service.relay import GroupSettings
    from relay.storage.models import Role

    live.app.relay.create_group(GroupSettings("mardi", lang="en"))
    live.app.relay.enroll("+15145550144", "mardi", Role.MEMBER, "en", Channel.SMS)
    _, output = invoke("staff", "add", "ana", "--role", "admin", "--lang", "en")
    page = page_factory()
    page.goto(next(w for w in output.split() if "/staff/setup/" in w))
    page.get_by_role("button", name="Create my passkey").click()
    page.wait_for_url(re.compile(r"/staff/groups$"))

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for path in ("/staff/groups/1/invites", "/staff/groups/1/close", "/staff/bans"):
        page.goto(live.base + path)
        assert_accessible(page)
    page.goto(live.base + "/staff/groups/1/members")
    page.get_by_role("button", name=re.compile("Show the number of")).click()
    assert page.locator(".big").inner_text() == "+15145550144"
    assert_accessible(page)
