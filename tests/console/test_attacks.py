"""The staff console under attack: no session, forged forms, old setup links, a facilitator
reaching for admin actions, numbers in pages, stack traces, guessing."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select
from starlette.testclient import TestClient

from cercle.console import accounts, sessions
from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, Group, StaffRole, StaffSession
from tests.console_support import Desk

NUMBER = "+15145550142"
PAGES = [
    "/staff/groups",
    "/staff/groups/1",
    "/staff/groups/1/members",
    "/staff/groups/1/invites",
    "/staff/groups/1/close",
    "/staff/bans",
    "/staff/audit",
    "/staff/health",
]
ADMIN_POSTS = {
    "/staff/groups": {"name": "jeudi", "lang": "en", "timer": "1d"},
    "/staff/groups/1/basics": {"lang": "fr", "timer": "2d"},
    "/staff/groups/1/schedule": {"sessions": "tue 19:00-20:30"},
    "/staff/groups/1/end": {"ends": "2030-01-31"},
    "/staff/groups/1/safety": {"premoderate": "3"},
    "/staff/groups/1/close": {"confirm": "mardi"},
    "/staff/groups/1/members": {"number": "+15145550143", "role": "member", "lang": "en"},
    "/staff/groups/1/members/1/ban": {},
    "/staff/groups/1/members/1/reveal": {},
    "/staff/bans": {"number": "+15145550144", "reason": "abuse"},
    "/staff/bans/lift": {"number": "+15145550144"},
}


def with_member(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi", lang="en"))
    from relay.messages import Channel
    from relay.storage.models import Role

    desk.app.relay.enroll(NUMBER, "mardi", Role.MEMBER, "en", Channel.SMS)


def audit_rows(desk: Desk) -> list[AuditEvent]:
    with Session(desk.app.engine) as s:
        return list(s.exec(select(AuditEvent)).all())


def test_without_a_session_pages_send_to_sign_in_and_forms_change_nothing(desk: Desk) -> None:
    with_member(desk)
    before = len(audit_rows(desk))

    for page in PAGES:
        answer = desk.web.get(page)
        assert answer.status_code == 303 and answer.headers["location"] == "/staff/signin", page
    for path, form in ADMIN_POSTS.items():
        assert desk.web.post(path, data=form).status_code == 403, path

    assert len(audit_rows(desk)) == before


def test_a_form_without_its_csrf_token_is_refused(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN)

    missing = desk.web.post("/staff/groups", data={"name": "mardi", "timer": "1d"})
    forged = desk.web.post("/staff/groups", data={"name": "mardi", "timer": "1d", "csrf": "x" * 32})

    assert missing.status_code == forged.status_code == 403
    assert "form has expired" in forged.text
    with Session(desk.app.engine) as s:
        assert s.exec(select(Group)).all() == []


def test_an_expired_setup_link_is_refused(desk: Desk) -> None:
    long_ago = desk.app.clock.now() - timedelta(hours=25)
    token = accounts.add(desk.app.engine, desk.app.keys, long_ago, "marie", StaffRole.ADMIN)

    page = desk.web.get(f"/staff/setup/{token}?lang=en")
    options = desk.web.post(
        f"/staff/setup/{token}/options", headers={"x-csrf-token": _session_csrf(desk)}
    )

    assert page.status_code == 410 and "not valid" in page.text
    assert options.status_code == 403


def test_a_used_setup_link_is_refused(desk: Desk) -> None:
    now = desk.app.clock.now()
    token = accounts.add(desk.app.engine, desk.app.keys, now, "marie", StaffRole.ADMIN)
    from relay.storage.engine import transaction

    with transaction(desk.app.engine) as s:
        account = accounts.by_setup_token(s, desk.app.keys, token, now)
        assert account is not None
        accounts.finish_setup(s, account, "cred-1", "cHVibGlj", 0, now)

    assert desk.web.get(f"/staff/setup/{token}").status_code == 410


def test_a_new_setup_link_replaces_the_old_one(desk: Desk) -> None:
    now = desk.app.clock.now()
    old = accounts.add(desk.app.engine, desk.app.keys, now, "marie", StaffRole.ADMIN)
    new = accounts.new_link(desk.app.engine, desk.app.keys, now, "marie")

    assert desk.web.get(f"/staff/setup/{old}").status_code == 410
    assert desk.web.get(f"/staff/setup/{new}").status_code == 200


def test_a_facilitator_cannot_reach_admin_actions(desk: Desk) -> None:
    with_member(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])
    before = len(audit_rows(desk))

    for path, form in ADMIN_POSTS.items():
        answer = desk.post(path, **form)
        assert answer.status_code == 403 and "Only admins" in answer.text, path
    for page in ("/staff/bans", "/staff/groups/1/close"):
        assert desk.web.get(page).status_code == 403
    group_page = desk.web.get("/staff/groups/1").text
    members_page = desk.web.get("/staff/groups/1/members").text

    assert "/basics" not in group_page and "/close" not in group_page
    assert "/reveal" not in members_page and "/ban" not in members_page
    assert len(audit_rows(desk)) == before


def test_a_facilitator_cannot_make_a_staff_invite(desk: Desk) -> None:
    with_member(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])

    answer = desk.post("/staff/groups/1/invites", expires="48h", role="facilitator")

    assert answer.status_code == 403


def test_no_page_shows_a_number_until_an_admin_reveals_it(desk: Desk) -> None:
    with_member(desk)
    digits = NUMBER[1:]
    for role in (StaffRole.FACILITATOR, StaffRole.ADMIN):
        mine = ["mardi"] if role is StaffRole.FACILITATOR else []
        desk.sign_in(f"who-{role.value}", role, groups=mine)
        for page in PAGES:
            text = desk.web.get(page).text
            assert digits not in text and "514 555" not in text, (role, page)
        assert "••••••••42" in desk.web.get("/staff/groups/1/members").text
    invite = desk.post("/staff/groups/1/invites", expires="48h", role="member").text
    assert (
        digits not in invite and "+1 514-555-0100" in invite
    )  # the organization's number, to text

    revealed = desk.post("/staff/groups/1/members/1/reveal")

    assert revealed.status_code == 200 and NUMBER in revealed.text
    [shown] = [e for e in audit_rows(desk) if e.action == "numbers_shown"]
    assert shown.actor == "staff:who-admin" and shown.detail == "1 members"


def test_errors_never_show_a_stack_trace(desk: Desk) -> None:
    with_member(desk)
    desk.sign_in("marie", StaffRole.ADMIN)
    answers = [
        desk.post("/staff/groups/1/members", number="not a number", role="member"),
        desk.post("/staff/groups/1/members", number=NUMBER, role="emperor"),
        desk.post("/staff/groups/1/basics", timer="forever"),
        desk.post("/staff/groups/1/safety", premoderate="many"),
        desk.post("/staff/groups/1/end", ends="someday"),
        desk.web.get("/staff/groups/999"),
        desk.web.post("/staff/signin/verify", content=b"{not json", headers={"x-csrf-token": "x"}),
    ]

    for answer in answers:
        assert answer.status_code in (400, 403, 404), answer.text
        assert "Traceback" not in answer.text and 'File "' not in answer.text
        assert "not a number" not in answer.text


def test_sign_in_attempts_are_limited(desk: Desk) -> None:
    csrf = _session_csrf(desk)
    codes = [
        desk.web.post("/staff/signin/options", headers={"x-csrf-token": csrf}).status_code
        for _ in range(sessions.PER_CLIENT + 1)
    ]

    assert codes[:-1] == [200] * sessions.PER_CLIENT
    assert codes[-1] == 429


def test_signing_out_ends_the_session_on_the_server(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN)
    cookie = desk.web.cookies.get(sessions.COOKIE)

    desk.post("/staff/signout")
    desk.web.cookies.set(sessions.COOKIE, cookie or "", domain="relay.example.org", path="/staff")

    assert desk.web.get("/staff/groups").status_code == 303
    assert "staff_signout" in [e.action for e in audit_rows(desk)]


def test_an_idle_session_expires(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN)
    from relay.storage.engine import transaction

    with transaction(desk.app.engine) as s:
        for row in s.exec(select(StaffSession)).all():
            row.seen_at -= sessions.IDLE + timedelta(seconds=1)
            s.add(row)

    assert desk.web.get("/staff/groups").status_code == 303


def test_cookie_and_headers_are_strict(desk: Desk) -> None:
    answer = desk.web.get("/staff/signin")

    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "http" not in csp
    assert answer.headers["x-frame-options"] == "DENY"


def test_staff_actions_are_audited_by_name_without_content(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN)

    desk.post("/staff/groups", name="mardi", lang="en", timer="1d", allow_sms="on")
    desk.post("/staff/groups/1/members", number=NUMBER, role="member", lang="en")

    rows = {e.action: e for e in audit_rows(desk) if e.actor == "staff:marie"}
    assert {"group_create", "enroll"} <= set(rows)
    assert all(NUMBER[2:] not in (e.detail or "") + (e.target or "") for e in rows.values())


def _session_csrf(desk: Desk) -> str:
    page = desk.web.get("/staff/signin").text
    return page.split('data-csrf="', 1)[1].split('"', 1)[0]


def test_guessing_setup_links_is_limited_even_for_a_right_guess(desk: Desk) -> None:
    now = desk.app.clock.now()
    token = accounts.add(desk.app.engine, desk.app.keys, now, "marie", StaffRole.ADMIN)
    guesses = [
        desk.web.get(f"/staff/setup/guess-{n}").status_code for n in range(sessions.PER_CLIENT)
    ]

    right = desk.web.get(f"/staff/setup/{token}")

    assert guesses == [410] * sessions.PER_CLIENT
    assert right.status_code == 429 and 'id="passkey"' not in right.text


def test_guesses_from_many_clients_never_shut_staff_out(desk: Desk) -> None:
    now = desk.app.clock.now()
    token = accounts.add(desk.app.engine, desk.app.keys, now, "marie", StaffRole.ADMIN)
    app = desk.web.app
    for n in range(12):  # far more attempts than any one client may make
        with TestClient(
            app, base_url="https://relay.example.org", client=(f"203.0.113.{n}", 40000)
        ) as guesser:
            for i in range(sessions.PER_CLIENT + 1):
                guesser.get(f"/staff/setup/guess-{n}-{i}")

    right = desk.web.get(f"/staff/setup/{token}")

    assert right.status_code == 200 and 'id="passkey"' in right.text
