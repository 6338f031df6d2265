"""How signal-cli's daemon reads a method's params, as its JSON-RPC layer does.

A method's params arrive as a JSON object bound to a map; each command then reads it
through a namespace that (1) accepts the command-line name with dashes or its camelCase
form, and (2) for a list option takes either one value or an array, under its own name or
with an ``s`` added (``recipient`` or ``recipients``). signal-cli ignores keys no command
reads; this fake answers the same way but records each unknown key as a *violation* so a
test fails on a misspelt parameter that signal-cli would silently drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def camel(dashed: str) -> str:
    """``quote-timestamp`` → ``quoteTimestamp``."""
    head, *rest = dashed.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class WrongTypeError(Exception):
    """A value of the wrong JSON type: signal-cli fails with a ClassCastException (-32603)."""


class MissingError(Exception):
    """A value a command unboxes without checking: a NullPointerException (-32603)."""


@dataclass
class Namespace:
    """The params of one call, read the way signal-cli reads them."""

    values: dict[str, Any]
    lists: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()
    read: set[str] = field(default_factory=set)

    def _raw(self, dashed: str) -> Any:
        for key in (dashed, camel(dashed)):
            if key in self.values and self.values[key] is not None:
                self.read.add(key)
                return self.values[key]
        return None

    def string(self, dashed: str) -> str | None:
        """A string option (anything else is a ClassCastException in signal-cli)."""
        value = self._raw(dashed)
        if value is not None and not isinstance(value, str):
            raise WrongTypeError(dashed)
        return value

    def boolean(self, dashed: str) -> bool:
        """A flag: only JSON ``true`` counts."""
        value = self._raw(dashed)
        if value is not None and not isinstance(value, bool):
            raise WrongTypeError(dashed)
        return value is True

    def integer(self, dashed: str) -> int | None:
        """A long or int option: a JSON number without fraction."""
        value = self._raw(dashed)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise WrongTypeError(dashed)
        return value

    def required_integer(self, dashed: str) -> int:
        """A long the command unboxes: missing is a NullPointerException."""
        value = self.integer(dashed)
        if value is None:
            raise MissingError(dashed)
        return value

    def string_list(self, dashed: str) -> list[str] | None:
        """A list option: one value or an array, under its name or its plural."""
        for name in (dashed, dashed + "s"):
            value = self._raw(name)
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(i, str) for i in items):
                raise WrongTypeError(dashed)
            return list(items)
        return None

    def unknown(self) -> list[str]:
        """Keys no option of the command reads (signal-cli ignores them)."""
        accepted: set[str] = {"account"}
        for dashed in self.known:
            accepted |= {dashed, camel(dashed)}
            if dashed in self.lists:
                accepted |= {dashed + "s", camel(dashed) + "s"}
        return sorted(k for k in self.values if k not in accepted)


# The options each method's command declares (dashed, as on the command line), and which of
# them are lists. Taken from the commands' argument parsers.
SEND_OPTIONS = frozenset(
    {
        "recipient",
        "group-id",
        "username",
        "note-to-self",
        "notify-self",
        "message",
        "message-from-stdin",
        "attachment",
        "view-once",
        "end-session",
        "mention",
        "text-style",
        "quote-timestamp",
        "quote-author",
        "quote-message",
        "quote-mention",
        "quote-attachment",
        "quote-text-style",
        "sticker",
        "preview-url",
        "preview-title",
        "preview-description",
        "preview-image",
        "story-timestamp",
        "story-author",
        "edit-timestamp",
        "no-urgent",
        "voice-note",
    }
)
SEND_LISTS = frozenset(
    {
        "recipient",
        "group-id",
        "username",
        "attachment",
        "mention",
        "text-style",
        "quote-mention",
        "quote-attachment",
        "quote-text-style",
    }
)

OPTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "send": (SEND_OPTIONS, SEND_LISTS),
    "sendReaction": (
        frozenset(
            {
                "group-id",
                "recipient",
                "username",
                "note-to-self",
                "notify-self",
                "emoji",
                "target-author",
                "target-timestamp",
                "remove",
                "story",
            }
        ),
        frozenset({"group-id", "recipient", "username"}),
    ),
    "remoteDelete": (
        frozenset({"target-timestamp", "group-id", "recipient", "username", "note-to-self"}),
        frozenset({"group-id", "recipient", "username"}),
    ),
    "sendReceipt": (
        frozenset({"recipient", "target-timestamp", "type"}),
        frozenset({"target-timestamp"}),
    ),
    "updateContact": (
        frozenset(
            {
                "recipient",
                "name",
                "given-name",
                "family-name",
                "nick-given-name",
                "nick-family-name",
                "note",
                "expiration",
            }
        ),
        frozenset(),
    ),
    "listIdentities": (frozenset({"number"}), frozenset()),
    "trust": (
        frozenset({"recipient", "trust-all-known-keys", "verified-safety-number"}),
        frozenset(),
    ),
    "getUserStatus": (frozenset({"recipient", "username"}), frozenset({"recipient", "username"})),
    "updateProfile": (
        frozenset(
            {
                "given-name",
                "name",
                "family-name",
                "about",
                "about-emoji",
                "mobile-coin-address",
                "avatar",
                "remove-avatar",
            }
        ),
        frozenset(),
    ),
    "getAttachment": (frozenset({"id", "recipient", "group-id"}), frozenset()),
    "submitRateLimitChallenge": (frozenset({"challenge", "captcha"}), frozenset()),
    "listDevices": (frozenset(), frozenset()),
    "removeDevice": (frozenset({"device-id"}), frozenset()),
    "version": (frozenset(), frozenset()),
}


def namespace(method: str, params: dict[str, Any]) -> Namespace:
    """The namespace of one call of ``method``."""
    known, lists = OPTIONS[method]
    return Namespace(dict(params), lists=lists, known=known)
