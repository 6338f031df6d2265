"""Consent: the texts a new member receives, and their answer. Until they send AGREE (or
ACCEPTE), only the commands marked ``before_consent`` work and nothing is relayed.
"""

from __future__ import annotations

import logging
import unicodedata

from relay.commands import table as commands
from relay.core.handlers import display_name, named
from relay.core.outcome import Audit, Deferred, Outcome, Reply, Service
from relay.delivery.outbox import OutboxWriter
from relay.groups import video
from relay.inbound import command, join_notices
from relay.inbound.turn import Result, Turn
from relay.language.durations import describe
from relay.language.i18n import Joined, Raw, Renderable, T
from relay.language.texts import ConfigText
from relay.messages import Channel
from relay.storage.models import Group, Member, MemberState

log = logging.getLogger(__name__)


AGREE_WORD = {"en": "AGREE", "fr": "ACCEPTE"}
_AGREE_KEYS = {"agree", "iagree", "accepte", "jaccepte", "accept", "daccord"}


def is_agree(text: str) -> bool:
    """Whether ``text`` says AGREE (ACCEPTE, I agree, d'accord…), whatever case or accents."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    key = "".join(c for c in decomposed if c.isalpha() and not unicodedata.combining(c))
    return key in _AGREE_KEYS


def consent_parts(relay: Service, group: Group, member: Member) -> list[Renderable]:
    """The consent texts in order: the group, agreements, privacy, SMS notice, how to leave."""
    t = relay.texts
    timer = describe(group.timer_seconds)
    parts: list[Renderable] = [
        ConfigText(
            t,
            "about",
            (
                ("org", relay.org_name),
                ("group", group.name),
                ("pseudonym", display_name(member)),
            ),
        ),
        ConfigText(t, "agreements"),
        ConfigText(t, "privacy", (("timer", timer),)),
    ]
    if member.channel == Channel.SMS:
        parts.append(ConfigText(t, "sms_notice"))
    parts.append(Joined((ConfigText(t, "how_to_leave"), consent_prompt(relay, member))))
    return parts


def consent_prompt(relay: Service, member: Member) -> Renderable:
    """The line that asks ``member`` to answer AGREE, in their language."""
    return ConfigText(relay.texts, "consent_prompt", (("agree", AGREE_WORD[member.lang]),))


def send_consent(relay: Service, writer: OutboxWriter, group: Group, member: Member) -> None:
    """Queue the consent texts for ``member``."""
    for part in consent_parts(relay, group, member):
        writer.fan_out([member], part)


def before_consent(turn: Turn, text: str, parsed: commands.Parsed | None) -> Result:
    """A message from someone who has not agreed yet: AGREE, an allowed command, or the prompt
    again."""
    if parsed is not None:
        return command.run(turn, parsed, consented=False)
    if is_agree(text):
        m = turn.member
        m.state = MemberState.ACTIVE
        m.consent_version = turn.relay.texts.consent_version(m.lang, m.channel == "sms")
        m.consented_at = turn.now
        join_notices.note(turn.s, m, turn.now)  # told with others who join meanwhile
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "Thank you. You are now in the group as {name}. Send {help} to see "
                        "what you can do.",
                        name=display_name(m),
                        help=Raw("/" + named("help").words[m.lang]),
                    )
                ),
                Audit("consent", target=m.pseudonym, detail=m.consent_version),
                Deferred(video.newcomer_link),  # a video session running now: their link
            )
        )
        return Result.CONSENT
    turn.apply.apply(Outcome.of(Reply(consent_prompt(turn.relay, turn.member))))
    return Result.HELD_BACK
