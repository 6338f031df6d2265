"""The health check that shows staff a surge of refused join attempts (someone guessing invite
codes or links), in ``cercle doctor`` and on the console's health page.

It only shows: a surge never locks anyone out. Codes and links carry too many bits to guess,
and each source (a sender's number, a web client) has its own limit; a lock for everyone would
hand whoever floods wrong guesses a way to keep every survivor out. The counts name no one
(:mod:`relay.groups.guesses`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from cercle.health.finding import Finding
from relay.groups import guesses
from relay.language.i18n import TN, T

CHECK = "join_guesses"
SURGE = 30  # refused attempts in the hour now running and the one before, all doors together
DOORS = {"sms": "SMS", "signal": "Signal", "web": "web", "sandbox": "sandbox"}


def check_join_guesses(engine: Engine, now: datetime) -> Finding:
    """Refused join attempts of the last hours, per door; a warning above :data:`SURGE`."""
    with Session(engine) as s:
        seen = guesses.recent(s, now)
    detail = {
        "refused_last_hour": dict(seen.last_hour),
        "refused_24h": dict(seen.last_day),
        "surge_at": SURGE,
    }
    if seen.hour_total < SURGE:
        return Finding(
            CHECK,
            "ok",
            TN(
                "{n} join attempt was refused in the last 24 hours (wrong, used or expired "
                "codes and links).",
                "{n} join attempts were refused in the last 24 hours (wrong, used or expired "
                "codes and links).",
                seen.day_total,
            ),
            None,
            detail,
        )
    doors = ", ".join(
        f"{DOORS.get(door, door)} {n}" for door, n in sorted(seen.last_hour.items()) if n
    )
    return Finding(
        CHECK,
        "warn",
        TN(
            "{n} join attempt was refused in the last hour ({doors}): someone may be guessing "
            "invite codes or links.",
            "{n} join attempts were refused in the last hour ({doors}): someone may be "
            "guessing invite codes or links.",
            seen.hour_total,
            doors=doors,
        ),
        T(
            "Joining still works: a valid code or link is never refused because of other "
            "people's guesses, and each phone number or web address is limited on its own. "
            "Nothing needs to be done. If it goes on for days, tell whoever runs the server; "
            "docs/threat-model.md explains the limits."
        ),
        detail,
    )
