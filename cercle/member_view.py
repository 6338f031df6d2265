"""How a member is shown to staff, the one rule the CLI (``cercle member list``, ``cercle
group show``) and the staff console's members page both use: the channel's name, the number
(masked unless an admin asks, which is audited; none at all for a web member, whose seat
address is no number), the role and the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from relay.core.handlers import CHANNEL_NAMES
from relay.language.i18n import Raw
from relay.messages import Channel
from relay.phone import mask
from relay.storage.models import Member

HIDDEN = "••••"  # an address that is not a phone number (a Signal account id): nothing shown


def has_number(member: Member) -> bool:
    """Whether the member is reached at a number staff may see (a web member is not)."""
    return member.channel != Channel.WEB


def shown_number(member: Member, address: str | None, *, reveal: bool = False) -> str:
    """The member's number as staff see it: masked, in full when ``reveal`` (the caller
    audits that), and empty for a web member."""
    if not has_number(member):
        return ""
    address = address or ""
    if reveal:
        return address
    return mask(address) if address.startswith("+") else HIDDEN


@dataclass(frozen=True)
class MemberView:
    """One member as staff see them."""

    pseudonym: str | None
    role: str
    channel: str  # the stored channel: signal, sms, web or sandbox
    lang: str
    state: str
    muted: bool
    last_active: date | None
    has_number: bool
    number: str  # see :func:`shown_number`

    def channel_name(self, lang: str) -> str:
        """The channel's name in ``lang`` (``SMS``, ``web``…)."""
        return CHANNEL_NAMES.get(self.channel, Raw(self.channel)).render(lang)


def view(member: Member, address: str | None, *, reveal: bool = False) -> MemberView:
    """How ``member`` (reached at ``address``) is shown; ``reveal`` shows the number in full."""
    return MemberView(
        pseudonym=member.pseudonym,
        role=member.role,
        channel=member.channel,
        lang=member.lang,
        state=member.state,
        muted=member.muted_until is not None,
        last_active=member.last_active_on,
        has_number=has_number(member),
        number=shown_number(member, address, reveal=reveal),
    )
