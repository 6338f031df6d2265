"""A deployment for staff console tests: SMS configured (nothing reaches a provider: no worker
runs), a migrated SQLite database, and helpers to sign a staff member in without a browser."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from httpx import Response
from sqlmodel import Session, select
from starlette.testclient import TestClient

from cercle.bootstrap import App, bootstrap
from cercle.console import access, sessions
from cercle.settings import Settings
from cercle.web import create_app
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import StaffAccount, StaffRole

ORG_SMS = "+15145550100"


def console_env(tmp_path: Path, public: str) -> dict[str, str]:
    """Environment of a deployment whose console is served at ``public``."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
        "CERCLE_DATA_KEY": generate_key(),
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000001",
        "TWILIO_AUTH_TOKEN": "test-token",
        "TWILIO_NUMBER": ORG_SMS,
        "TWILIO_API_BASE": "http://127.0.0.1:9",
        "PUBLIC_BASE_URL": public,
    }


def deployment(tmp_path: Path, public: str, env: dict[str, str] | None = None) -> App:
    """A wired, migrated app for ``env`` (by default a new ``console_env``)."""
    env = env or console_env(tmp_path, public)
    app = bootstrap(Settings.from_env(environ=env, dotenv_path=tmp_path / "no.env"))
    upgrade(app.engine)
    return app


@dataclass
class Desk:
    """The web app as deployed, a client on it, and the app behind it."""

    app: App
    web: TestClient

    def sign_in(
        self, name: str, role: StaffRole, lang: str = "en", groups: Sequence[str] = ()
    ) -> StaffAccount:
        """An account (a facilitator of ``groups``) with a session on ``web`` (the passkey
        ceremony has its browser test)."""
        access.add(self.app.engine, self.app.keys, self.app.clock.now(), name, role, lang, groups)
        with Session(self.app.engine) as s:
            account = s.exec(select(StaffAccount).where(StaffAccount.name == name)).one()
        token = sessions.open_session(self.app.engine, self.app.clock.now(), lang, account.id)
        self.web.cookies.clear()
        self.web.cookies.set(sessions.COOKIE, token, domain="relay.example.org", path="/staff")
        return account

    def csrf(self) -> str:
        """The CSRF token of the current session (as a form would carry it)."""
        page = self.web.get("/staff/groups").text
        return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]

    def post(self, path: str, **form: str) -> Response:
        """Submit a console form with this session's CSRF token."""
        return self.web.post(path, data={"csrf": self.csrf(), **form})


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """The console of a fresh deployment, reached over https as through the proxy."""
    app = deployment(tmp_path, "https://relay.example.org")
    with TestClient(
        create_app(app),
        base_url="https://relay.example.org",
        raise_server_exceptions=False,
        follow_redirects=False,
    ) as web:
        yield Desk(app, web)
    app.close()
