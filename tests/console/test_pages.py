"""What staff see on the console's pages (the browser tests cover the flow; these the rest)."""

from __future__ import annotations

from cercle.health import CHECKS
from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, StaffRole
from tests.console_support import Desk


def test_the_health_page_shows_every_doctor_check(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.FACILITATOR)

    page = desk.web.get("/staff/health").text

    for check in CHECKS:
        assert f"{check}:" in page, check
    assert "Also check Signal, Twilio and the public address" in page


def test_the_health_page_shows_each_jobs_last_run_in_the_staff_members_language(
    desk: Desk,
) -> None:
    from datetime import timedelta

    from relay.storage import job_runs

    now = desk.app.clock.now()
    job_runs.record(desk.app.engine, "retention", now - timedelta(hours=3), ok=True, every=60)
    job_runs.record(desk.app.engine, "twilio_purge", now, ok=False, every=30)
    desk.sign_in("marie", StaffRole.FACILITATOR, lang="fr")

    page = desk.web.get("/staff/health").text

    assert "<td>Purge de rétention</td><td>il y a 3 heures" in page
    assert "<td>Effacement des traces chez Twilio</td>" in page and "<td>Échouée</td>" in page
    assert "jobs: Tâches périodiques en retard ou en échec : retention a tourné" in page
    assert "twilio_purge a échoué il y a 0 s" in page


def test_the_health_page_shows_the_doctors_findings_in_the_staff_members_language(
    desk: Desk,
) -> None:
    desk.sign_in("marie", StaffRole.FACILITATOR, lang="fr")

    page = desk.web.get("/staff/health").text

    assert "jobs: Aucun worker n’a encore tourné." in page
    assert "Que faire : Lancez-en un (`cercle worker` ou `cercle run`)" in page
    assert "No worker has run yet." not in page


def test_the_audit_trail_filters_by_group_and_action(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.app.relay.create_group(GroupSettings("jeudi"))
    desk.sign_in("marie", StaffRole.ADMIN)

    by_group = desk.web.get("/staff/audit", params={"group": "2"}).text
    by_action = desk.web.get("/staff/audit", params={"action": "staff_add"}).text

    assert "<td>jeudi</td>" in by_group and "<td>mardi</td>" not in by_group
    assert "staff_add" in by_action and "group_create</td>" not in by_action


def test_closing_a_group_needs_its_name_typed(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("marie", StaffRole.ADMIN)

    wrong = desk.post("/staff/groups/1/close", confirm="jeudi")
    right = desk.post("/staff/groups/1/close", confirm="mardi")

    assert wrong.status_code == 400 and "nothing was closed" in wrong.text
    assert right.status_code == 303
    assert "closed" in desk.web.get("/staff/groups").text


def test_a_staff_member_chooses_the_language(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN, lang="en")

    desk.post("/staff/lang", lang="fr")

    page = desk.web.get("/staff/groups").text
    assert '<html lang="fr">' in page and "Groupes" in page


def test_an_invite_code_is_shown_once_and_can_be_revoked(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])

    made = desk.post("/staff/groups/1/invites", expires="48h", role="member", lang="fr").text
    code = made.split('class="code"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    listing = desk.web.get("/staff/groups/1/invites").text
    revoked = desk.post("/staff/groups/1/invites/1/revoke")

    assert code not in listing
    assert revoked.status_code == 303
    assert "No live code." in desk.web.get("/staff/groups/1/invites").text


def test_banning_a_member_keeps_their_number_out_without_showing_it(desk: Desk) -> None:
    from relay.messages import Channel
    from relay.storage.models import Role

    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.app.relay.enroll("+15145550142", "mardi", Role.MEMBER, "en", Channel.SMS)
    desk.sign_in("marie", StaffRole.ADMIN)

    banned = desk.post("/staff/groups/1/members/1/ban")
    again = desk.post("/staff/groups/1/members", number="+15145550142", role="member")

    assert banned.status_code == 303
    assert again.status_code == 400 and "banned" in again.text
    assert "5550142" not in again.text
    from sqlmodel import Session, select

    with Session(desk.app.engine) as s:
        actions = [(e.actor, e.action) for e in s.exec(select(AuditEvent)).all()]
    assert ("staff:marie", "ban") in actions and ("staff:marie", "ban_blocked") in actions


def test_errors_from_the_core_are_in_the_staff_members_language(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("marie", StaffRole.ADMIN, lang="fr")

    answer = desk.post("/staff/groups/1/members", number="555-0142", role="member")

    assert answer.status_code == 400
    assert "Ce numéro de téléphone n’est pas valide." in answer.text


def test_a_web_member_is_shown_as_web_with_no_number_to_reveal(desk: Desk) -> None:
    from sqlmodel import Session

    from relay.storage.models import Member, MemberState

    desk.app.relay.create_group(GroupSettings("mardi"))
    with Session(desk.app.engine) as s:
        s.add(
            Member(
                group_id=1,
                channel="web",
                state=MemberState.ACTIVE,
                pseudonym="Willow",
                created_at=desk.app.clock.now(),
            )
        )
        s.commit()
    desk.sign_in("marie", StaffRole.ADMIN)

    page = desk.web.get("/staff/groups/1/members").text
    reveal = desk.post("/staff/groups/1/members/1/reveal")

    row = page.split("Willow", 1)[1].split("</tr>", 1)[0]
    assert "<td>web</td>" in row and "SMS" not in row
    assert "/reveal" not in row
    assert reveal.status_code == 404 and "no number" in reveal.text


def test_the_health_page_shows_a_surge_of_refused_joins_in_the_staff_members_language(
    desk: Desk,
) -> None:
    from relay.groups import guesses
    from relay.storage.engine import transaction

    with transaction(desk.app.engine) as s:
        for _ in range(40):
            guesses.count(s, "sms", desk.app.clock.now())
    desk.sign_in("marie", StaffRole.FACILITATOR, lang="fr")

    page = desk.web.get("/staff/health").text

    assert "join_guesses: 40 tentatives d’adhésion ont été refusées dans la dernière heure" in page
    assert "(SMS 40)" in page and "Les adhésions fonctionnent toujours" in page
