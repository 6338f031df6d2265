"""The console and the CLI run the same core functions: the same actions leave the same
database state (ids, times, random pseudonyms and who acted aside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from cercle.web import create_app
from relay.storage.engine import make_engine
from relay.storage.models import AuditEvent, Group, GroupPolicy, Member, Outbox, StaffRole
from tests.cli_support import invoke
from tests.console_support import Desk, deployment

NUMBER = "+15145550142"


def snapshot(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        groups = [
            (g.name, g.lang, g.timer_seconds, g.allow_rename, g.allow_sms, g.allow_media)
            for g in s.exec(select(Group)).all()
        ]
        policies = [
            p.model_dump(exclude={"group_id", "premoderate_since"})
            for p in s.exec(select(GroupPolicy)).all()
        ]
        members = [
            (m.channel, m.role, m.lang, m.state, m.timer_seconds)
            for m in s.exec(select(Member)).all()
        ]
        outbox = sorted((o.channel, o.kind, o.state) for o in s.exec(select(Outbox)).all())
        audit = sorted(
            (e.action, e.detail)
            for e in s.exec(select(AuditEvent)).all()
            if e.action != "staff_add"
        )
    return {
        "groups": groups,
        "policies": policies,
        "members": members,
        "outbox": outbox,
        "audit": audit,
    }


def test_console_and_cli_leave_the_same_state(env: dict[str, str], tmp_path: Path) -> None:
    for args in (
        ("group", "create", "mardi", "--lang", "en", "--timer", "1d", "--allow-media"),
        ("group", "set", "mardi", "--lang", "fr", "--timer", "2d"),
        (
            "group",
            "schedule",
            "mardi",
            "--clear",
            "--add",
            "tue 19:00-20:30",
            "--tz",
            "America/Toronto",
        ),
        (
            "group",
            "safety",
            "mardi",
            "--require-approval",
            "--premoderate",
            "2",
            "--exit-word",
            "pomme",
            "--alert-relay",
            "--no-alert-content",
        ),
        ("group", "end", "mardi", "--on", "2030-01-31"),
        ("member", "add", NUMBER, "--group", "mardi", "--lang", "en", "--via", "sms"),
    ):
        code, output = invoke(*args)
        assert code == 0, (args, output)

    (tmp_path / "console").mkdir()
    app = deployment(tmp_path / "console", "https://relay.example.org")
    with TestClient(
        create_app(app), base_url="https://relay.example.org", follow_redirects=False
    ) as web:
        desk = Desk(app, web)
        desk.sign_in("marie", StaffRole.ADMIN)
        for path, form in (
            (
                "/staff/groups",
                {
                    "name": "mardi",
                    "lang": "en",
                    "timer": "1d",
                    "allow_sms": "on",
                    "allow_media": "on",
                },
            ),
            (
                "/staff/groups/1/basics",
                {"lang": "fr", "timer": "2d", "allow_sms": "on", "allow_media": "on"},
            ),
            ("/staff/groups/1/schedule", {"sessions": "tue 19:00-20:30", "tz": "America/Toronto"}),
            (
                "/staff/groups/1/safety",
                {"require_approval": "on", "premoderate": "2", "exit_word": "pomme"},
            ),
            ("/staff/groups/1/end", {"ends": "2030-01-31"}),
            (
                "/staff/groups/1/members",
                {"number": NUMBER, "role": "member", "lang": "en", "via": "sms"},
            ),
        ):
            assert desk.post(path, **form).status_code == 303, path
    cli_engine = make_engine(env["DATABASE_URL"])

    console_state, cli_state = snapshot(app.engine), snapshot(cli_engine)
    assert console_state == cli_state
    assert cli_state["members"] and cli_state["policies"] and len(cli_state["audit"]) >= 6
    app.close()
    cli_engine.dispose()
