"""How a member is shown to staff: one rule for the CLI and the console (cercle.member_view)."""

from __future__ import annotations

from datetime import UTC, datetime

from cercle.member_view import has_number, shown_number, view
from relay.storage.models import Member, MemberState

NUMBER = "+15145550142"
NOW = datetime(2027, 3, 2, 19, 0, tzinfo=UTC)


def member(channel: str) -> Member:
    return Member(
        group_id=1,
        channel=channel,
        pseudonym="Loutre",
        lang="en",
        state=MemberState.ACTIVE,
        created_at=NOW,
    )


def test_an_sms_member_shows_a_masked_number_and_the_sms_channel() -> None:
    shown = view(member("sms"), NUMBER)
    assert shown.has_number
    assert NUMBER not in shown.number
    assert shown.number.endswith("42")
    assert shown.channel_name("en") == "SMS"
    assert shown.state == MemberState.ACTIVE


def test_an_admin_who_asks_sees_the_whole_number() -> None:
    assert shown_number(member("signal"), NUMBER, reveal=True) == NUMBER


def test_a_web_member_is_shown_as_web_with_no_number_even_when_revealed() -> None:
    web = member("web")
    shown = view(web, "seat-address-that-is-no-number", reveal=True)
    assert not has_number(web)
    assert shown.number == ""
    assert shown.channel_name("en") == "web"
    assert shown.channel_name("fr") != "SMS"


def test_a_signal_member_known_only_by_account_shows_nothing_of_it() -> None:
    shown = view(member("signal"), "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert shown.number == "••••"
