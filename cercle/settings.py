"""Typed settings, read once at start from the environment (and ``.env``; real variables win).

Every problem names the variable to fix. Secrets are wrapped so they never appear in a
``repr``, a log line or a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bots.signal.jsonrpc import Target
from bots.web.client import LOCAL as LOCAL_PROXIES
from bots.web.client import ProxyListError, TrustedProxies
from relay.errors import CercleError
from relay.groups.video import check_server
from relay.storage.crypto import DataKeyError, parse_key
from relay.storage.engine import DEFAULT_URL


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and never its value."""


@dataclass(frozen=True)
class Secret:
    """A secret value that does not print itself."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def _opt(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def _int(env: Mapping[str, str | None], name: str, default: int) -> int:
    raw = _opt(env, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number") from exc


def _float(env: Mapping[str, str | None], name: str, default: float) -> float:
    raw = _opt(env, name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number") from exc


_N = TypeVar("_N", int, float)


def _positive(value: _N, name: str) -> _N:
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything an operator configures. See ``config/example.env``."""

    database_url: str = DEFAULT_URL
    data_key: Secret | None = None
    org_name: str = "Cercle"
    config_dir: Path | None = None
    port: int = 8000
    public_base_url: str | None = None
    signal_service: str | None = None
    # signal-cli's own JSON-RPC daemon (tcp://HOST:PORT or unix:PATH), the loss-free way in.
    signal_cli: str | None = None
    signal_number: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: Secret | None = None
    twilio_api_key: str | None = None
    twilio_api_secret: Secret | None = None
    twilio_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    # Signal: a ceiling for the whole number (high: Signal limits each recipient, not the
    # account); see signal_in_flight and signal_member_* below.
    signal_rate: float = 50.0
    signal_burst: int = 100
    sms_rate: float = 1.0
    sms_burst: int = 1
    flood_limit: int = 8
    flood_window: float = 60.0
    # The key being rotated away from: accepted to read old rows until rotation is done.
    data_key_previous: Secret | None = None
    audit_retention_days: int = 365
    # What the organization's Signal number shows: neutral, so a glance reveals no group.
    profile_name: str = "Info"
    profile_avatar: Path | None = None
    # Where sessions and end dates are read when an admin does not say (IANA name).
    timezone: str = "America/Toronto"
    # Signal sends in flight at once to signal-cli (per worker), and the pace of
    # each member's conversation (Signal allows 60 at once, then 1 a second, per recipient).
    signal_in_flight: int = 8
    signal_member_rate: float = 1.0
    signal_member_burst: int = 50
    # The web door: members who join from a private link in a browser.
    web_enabled: bool = False
    web_title: str = "Notes"  # what the browser tab shows: neutral, never the group's name
    web_exit_url: str = "https://www.wikipedia.org/"  # where the quick exit goes
    # Proxies whose X-Forwarded-For names the client (addresses or networks); by default only
    # one on the same machine. Everyone else is taken at the address they connect from.
    trusted_proxies: tuple[str, ...] = LOCAL_PROXIES
    # The organization's own Jitsi Meet server, for groups that meet by video. No default:
    # without it no group can turn video on (Cercle never uses a public service).
    video_url: str | None = None

    @property
    def signal_enabled(self) -> bool:
        """Signal is on when its variables are set (either way in)."""
        return self.signal_service is not None or self.signal_cli is not None

    @property
    def sms_enabled(self) -> bool:
        """SMS is on when the Twilio account is set."""
        return self.twilio_account_sid is not None

    @property
    def any_transport(self) -> bool:
        """Whether at least one real transport is configured."""
        return self.signal_enabled or self.sms_enabled or self.web_enabled

    def require_key(self) -> Secret:
        """The data key, or a clear refusal saying what to set and how to make one."""
        if self.data_key is None:
            raise SettingsError(
                "CERCLE_DATA_KEY is not set. It encrypts phone numbers and messages at rest. "
                "Generate one with `cercle keys generate`, store it in your secret manager, "
                "and set CERCLE_DATA_KEY (or add it to .env)."
            )
        return self.data_key

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
    ) -> Settings:
        """Read settings: ``.env`` first, real environment variables over it."""
        env: dict[str, str | None] = {}
        path = dotenv_path if dotenv_path is not None else Path.cwd() / ".env"
        if path.is_file():
            env.update(dotenv_values(path))
        env.update(os.environ if environ is None else environ)
        return cls._parse(env)

    @classmethod
    def _parse(cls, env: Mapping[str, str | None]) -> Settings:
        key = _opt(env, "CERCLE_DATA_KEY")
        if key is not None:
            try:
                parse_key(key)
            except DataKeyError as exc:
                raise SettingsError(str(exc)) from exc
        previous = _opt(env, "CERCLE_DATA_KEY_PREVIOUS")
        if previous is not None:
            if key is None:
                raise SettingsError(
                    "CERCLE_DATA_KEY_PREVIOUS is set but CERCLE_DATA_KEY is not: set the new key "
                    "as CERCLE_DATA_KEY and the old one as CERCLE_DATA_KEY_PREVIOUS"
                )
            try:
                parse_key(previous)
            except DataKeyError as exc:
                raise SettingsError(
                    str(exc).replace("CERCLE_DATA_KEY", "CERCLE_DATA_KEY_PREVIOUS", 1)
                ) from exc
            if parse_key(previous) == parse_key(key):
                raise SettingsError(
                    "CERCLE_DATA_KEY_PREVIOUS is the same key as CERCLE_DATA_KEY: set the new "
                    "key as CERCLE_DATA_KEY (see docs/keys.md)"
                )
        signal_service, signal_cli, signal_number = _signal_ways(env)
        sid = _opt(env, "TWILIO_ACCOUNT_SID")
        token, api_key, api_secret = (
            _opt(env, n) for n in ("TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET")
        )
        number, service = _opt(env, "TWILIO_NUMBER"), _opt(env, "TWILIO_MESSAGING_SERVICE_SID")
        public = _opt(env, "PUBLIC_BASE_URL")
        if sid:
            if not token:
                raise SettingsError(
                    "TWILIO_AUTH_TOKEN must be set: it also checks the signature of every webhook"
                )
            if bool(api_key) != bool(api_secret):
                raise SettingsError("TWILIO_API_KEY and TWILIO_API_SECRET go together")
            if not (number or service):
                raise SettingsError(
                    "Set TWILIO_NUMBER or TWILIO_MESSAGING_SERVICE_SID: the sender of SMS"
                )
            if not public:
                raise SettingsError(
                    "PUBLIC_BASE_URL must be set for SMS: Twilio calls it, "
                    "and webhook signatures are checked against it"
                )
        elif any((token, api_key, number, service)):
            raise SettingsError("TWILIO_ACCOUNT_SID must be set to use Twilio")
        if public and not public.startswith(("https://", "http://")):
            raise SettingsError("PUBLIC_BASE_URL must start with https://")
        config_dir = _opt(env, "CERCLE_CONFIG_DIR")
        avatar = _opt(env, "CERCLE_PROFILE_AVATAR")
        if avatar is not None and not Path(avatar).is_file():
            raise SettingsError("CERCLE_PROFILE_AVATAR must be the path of an image file")
        timezone = _opt(env, "CERCLE_TIMEZONE") or "America/Toronto"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                "CERCLE_TIMEZONE must be an IANA time zone such as America/Toronto "
                "(install the tzdata package where the system has none)"
            ) from exc
        web = _web(env, public)
        return cls(
            database_url=_opt(env, "DATABASE_URL") or DEFAULT_URL,
            data_key=Secret(key) if key else None,
            org_name=_opt(env, "CERCLE_ORG_NAME") or "Cercle",
            config_dir=Path(config_dir) if config_dir else None,
            port=_int(env, "PORT", 8000),
            public_base_url=public.rstrip("/") if public else None,
            signal_service=signal_service,
            signal_cli=signal_cli,
            signal_number=signal_number,
            twilio_account_sid=sid,
            twilio_auth_token=Secret(token) if token else None,
            twilio_api_key=api_key,
            twilio_api_secret=Secret(api_secret) if api_secret else None,
            twilio_number=number,
            twilio_messaging_service_sid=service,
            twilio_api_base=(_opt(env, "TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/"),
            signal_rate=_positive(_float(env, "CERCLE_SIGNAL_RATE", 50.0), "CERCLE_SIGNAL_RATE"),
            signal_burst=_positive(_int(env, "CERCLE_SIGNAL_BURST", 100), "CERCLE_SIGNAL_BURST"),
            sms_rate=_positive(_float(env, "CERCLE_SMS_RATE", 1.0), "CERCLE_SMS_RATE"),
            sms_burst=_positive(_int(env, "CERCLE_SMS_BURST", 1), "CERCLE_SMS_BURST"),
            flood_limit=_positive(_int(env, "CERCLE_FLOOD_LIMIT", 8), "CERCLE_FLOOD_LIMIT"),
            flood_window=_positive(_float(env, "CERCLE_FLOOD_WINDOW", 60.0), "CERCLE_FLOOD_WINDOW"),
            data_key_previous=Secret(previous) if previous else None,
            audit_retention_days=_positive(
                _int(env, "CERCLE_AUDIT_RETENTION_DAYS", 365), "CERCLE_AUDIT_RETENTION_DAYS"
            ),
            profile_name=_opt(env, "CERCLE_PROFILE_NAME") or "Info",
            profile_avatar=Path(avatar) if avatar else None,
            timezone=timezone,
            **_signal_pace(env),
            **web,
            video_url=_video(env),
        )


def _signal_ways(env: Mapping[str, str | None]) -> tuple[str | None, str | None, str | None]:
    """``SIGNAL_SERVICE``, ``SIGNAL_CLI`` and ``SIGNAL_NUMBER``, checked together: one way to
    Signal at most, and the number with it."""
    signal_service = _opt(env, "SIGNAL_SERVICE")
    signal_cli = _signal_cli(env)
    signal_number = _opt(env, "SIGNAL_NUMBER")
    if signal_service and signal_cli:
        raise SettingsError(
            "SIGNAL_SERVICE and SIGNAL_CLI are both set: choose one way to Signal, "
            "SIGNAL_CLI (signal-cli's own daemon, recommended) or SIGNAL_SERVICE "
            "(signal-cli-rest-api)"
        )
    if bool(signal_service or signal_cli) != bool(signal_number):
        missing = "SIGNAL_NUMBER" if signal_service or signal_cli else "SIGNAL_CLI"
        raise SettingsError(
            f"{missing} must be set too: Signal needs SIGNAL_NUMBER and either SIGNAL_CLI "
            "(tcp://HOST:PORT or unix:PATH of signal-cli's daemon) or SIGNAL_SERVICE "
            "(host:port of signal-cli-rest-api)"
        )
    if signal_service and ("://" in signal_service or ":" not in signal_service):
        raise SettingsError("SIGNAL_SERVICE must be host:port, e.g. localhost:8080")
    return signal_service, signal_cli, signal_number


def _signal_cli(env: Mapping[str, str | None]) -> str | None:
    """``SIGNAL_CLI``: where signal-cli's daemon listens, checked here so a typo fails at
    start rather than at the first message."""
    value = _opt(env, "SIGNAL_CLI")
    if value is None:
        return None
    try:
        Target.parse(value)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return value


def _signal_pace(env: Mapping[str, str | None]) -> dict[str, Any]:
    """The Signal pacing settings: sends in flight, and each member's pace (at most what
    Signal allows per sender-recipient pair: a burst of 60, then 1 a second)."""
    burst = _positive(_int(env, "CERCLE_SIGNAL_MEMBER_BURST", 50), "CERCLE_SIGNAL_MEMBER_BURST")
    rate = _positive(_float(env, "CERCLE_SIGNAL_MEMBER_RATE", 1.0), "CERCLE_SIGNAL_MEMBER_RATE")
    if burst > 60 or rate > 1.0:
        raise SettingsError(
            "CERCLE_SIGNAL_MEMBER_BURST and CERCLE_SIGNAL_MEMBER_RATE cannot exceed Signal's own "
            "limit per recipient (60, then 1 a second)"
        )
    in_flight = _positive(_int(env, "CERCLE_SIGNAL_IN_FLIGHT", 8), "CERCLE_SIGNAL_IN_FLIGHT")
    return {"signal_in_flight": in_flight, "signal_member_rate": rate, "signal_member_burst": burst}


def _web(env: Mapping[str, str | None], public: str | None) -> dict[str, Any]:
    """The web door's settings: ``CERCLE_WEB=on`` turns it on (it needs ``PUBLIC_BASE_URL``,
    the start of every join link)."""
    switch = (_opt(env, "CERCLE_WEB") or "off").lower()
    if switch not in ("on", "off"):
        raise SettingsError("CERCLE_WEB must be on or off")
    if switch == "on" and not public:
        raise SettingsError(
            "PUBLIC_BASE_URL must be set for CERCLE_WEB=on: join links start with it"
        )
    title = _opt(env, "CERCLE_WEB_TITLE") or "Notes"
    if len(title) > 40:
        raise SettingsError("CERCLE_WEB_TITLE must be 40 characters at most")
    exit_url = _opt(env, "CERCLE_WEB_EXIT_URL") or "https://www.wikipedia.org/"
    if not exit_url.startswith(("https://", "http://")):
        raise SettingsError("CERCLE_WEB_EXIT_URL must be an absolute http(s) URL")
    return {
        "web_enabled": switch == "on",
        "web_title": title,
        "web_exit_url": exit_url,
        "trusted_proxies": _trusted_proxies(env),
    }


def _trusted_proxies(env: Mapping[str, str | None]) -> tuple[str, ...]:
    """``CERCLE_TRUSTED_PROXIES``: comma-separated addresses or networks, ``none`` for none;
    unset, only a proxy on the same machine."""
    raw = _opt(env, "CERCLE_TRUSTED_PROXIES")
    if raw is None:
        return LOCAL_PROXIES
    if raw.lower() == "none":
        return ()
    entries = tuple(e.strip() for e in raw.split(",") if e.strip())
    try:
        TrustedProxies.parse(entries)
    except ProxyListError as exc:
        raise SettingsError(f"CERCLE_TRUSTED_PROXIES: {exc}") from exc
    return entries


def _video(env: Mapping[str, str | None]) -> str | None:
    """``CERCLE_VIDEO_URL``: the https address of the organization's own Jitsi Meet server."""
    raw = _opt(env, "CERCLE_VIDEO_URL")
    if raw is None:
        return None
    try:
        return check_server(raw)
    except CercleError as exc:
        raise SettingsError(exc.safe_message) from exc
