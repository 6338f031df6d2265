"""Words that depend on how a member is reached: a web member has no number, an SMS member
has no disappearing messages.

A handler that speaks of the member's number returns :class:`PerChannel` text; the outbox
renders each copy for the recipient's channel (:func:`for_channel`) and language. Texts that
hold no :class:`PerChannel` part render exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from relay.language.i18n import Joined, Renderable, T


@runtime_checkable
class ChannelAware(Protocol):
    """A text that has its own words for some channels."""

    def for_channel(self, channel: str) -> Renderable:
        """The text for a member on ``channel``."""
        ...


@dataclass(frozen=True)
class PerChannel:
    """One text with other words for some channels (``{"web": T(...)}``).

    Rendered without a channel (a preview, a log), it gives the ``default`` words.
    """

    default: Renderable
    by_channel: Mapping[str, Renderable] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        """The default words in ``lang``."""
        return self.default.render(lang)

    def for_channel(self, channel: str) -> Renderable:
        """The words for ``channel``, or the default ones."""
        return for_channel(self.by_channel.get(channel, self.default), channel)


def for_channel(text: Renderable, channel: str) -> Renderable:
    """``text`` with every channel-dependent part chosen for ``channel`` (parameters and
    joined parts included)."""
    if isinstance(text, ChannelAware):
        return text.for_channel(channel)
    if isinstance(text, Joined):
        return Joined(tuple(for_channel(p, channel) for p in text.parts), text.sep)
    if isinstance(text, T) and any(isinstance(v, Renderable) for v in text.params.values()):
        params = {
            k: for_channel(v, channel) if isinstance(v, Renderable) else v
            for k, v in text.params.items()
        }
        resolved = T(text.msgid, **params)
        object.__setattr__(resolved, "plural", text.plural)
        object.__setattr__(resolved, "n", text.n)
        return resolved
    return text


def depends_on_channel(text: Renderable) -> bool:
    """Whether any part of ``text`` has words of its own for some channel."""
    if isinstance(text, ChannelAware):
        return True
    if isinstance(text, Joined):
        return any(depends_on_channel(p) for p in text.parts)
    if isinstance(text, T):
        return any(depends_on_channel(v) for v in text.params.values() if isinstance(v, Renderable))
    return False
