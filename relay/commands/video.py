"""``/video``: the link to the running session's video room, sent again to whoever asks.

Registers its row of the command table (:mod:`relay.commands.table`). /help lists it only in
groups that meet by video. The room is stored state, so the answer is a
:class:`~relay.core.outcome.Deferred` effect, run in the same transaction.
"""

from __future__ import annotations

from relay.core.handlers import Context, Refusal, command
from relay.core.outcome import Deferred, Outcome, Reply, Store
from relay.groups import video
from relay.language.i18n import T
from relay.storage.models import Role


def _resend(st: Store) -> Outcome:
    if video.send_own_link(st):
        return Outcome()
    return Outcome.of(Reply(video.no_session_text()))


@command(
    "video",
    {"en": "video", "fr": "video"},
    Role.MEMBER,
    T("/video"),
    T("your link to this session's video room, again"),
    applies=lambda group: group.video,
)
def cmd_video(ctx: Context) -> Outcome:
    """Send the member their own link again, during a session."""
    if not ctx.group.video:
        raise Refusal(T("This group does not meet by video. You are in the text group."))
    return Outcome.of(Deferred(_resend))
