"""The core's side of :class:`relay.doors.WebJoins`: joining a group from a private link in a
browser, on the web channel, with the new member's seat stored in the same transaction."""

from __future__ import annotations

from sqlmodel import Session

from relay.doors import Welcome
from relay.messages import Channel
from relay.service import links
from relay.service.relay import Relay
from relay.service.web_seats import WebStore
from relay.storage.models import Group, Member


class WebJoining:
    """Joining by link for the web door, over one core and its seats."""

    def __init__(self, relay: Relay, seats: WebStore) -> None:
        self._relay = relay
        self._seats = seats

    def preview(self, code: str, lang: str | None) -> Welcome | None:
        """The welcome of a usable link, or ``None``."""
        return links.preview(self._relay, code, Channel.WEB, lang)

    def join(self, code: str, token: str, address: str, lang: str | None) -> str | None:
        """Enroll someone who agreed, with their seat; their language, or ``None``."""

        def seat(s: Session, member: Member, group: Group) -> None:
            self._seats.new_seat(
                s, member.id or 0, token, address, group.timer_seconds, self._relay.clock.now()
            )

        joined = links.join(self._relay, code, Channel.WEB, address, seat, lang)
        return None if joined is None else joined.lang

    def refused(self) -> None:
        """Count one client refused for asking too often."""
        links.refused(self._relay, Channel.WEB)

    def already_accepted(self, dedup_key: str) -> bool:
        """Whether the core already accepted this event (a retried post)."""
        return links.already_accepted(self._relay, dedup_key)
