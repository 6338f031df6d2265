"""A check's outcome (:class:`Finding`), the list of checks, and the exit code they add up to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from relay.language.i18n import Renderable

if TYPE_CHECKING:
    pass


Status = Literal["ok", "warn", "fail", "skip"]


CHECKS = (
    "config",
    "data_key",
    "migrations",
    "signal",
    "signal_restarts",
    "twilio",
    "public_url",
    "passkey_host",
    "clock",
    "outbox",
    "failures",
    "jobs",
    "join_guesses",
)


# Exit codes of `cercle doctor` (documented in docs/operations.md).
EXIT_OK, EXIT_WARN, EXIT_FAIL = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    """The outcome of one check.

    ``summary`` and ``fix`` are translatable: ``cercle doctor`` and start-up messages render
    them in English, the staff console in the staff member's language (:meth:`text`).
    """

    check: str  # one of CHECKS
    status: Status
    summary: Renderable  # one plain line, names no one
    fix: Renderable | None = None  # what to do about it
    detail: Mapping[str, object] = field(default_factory=dict)  # figures (--json, console)

    def text(self, lang: str = "en") -> tuple[str, str | None]:
        """The summary and the fix (``None`` when there is nothing to do) in ``lang``."""
        return self.summary.render(lang), None if self.fix is None else self.fix.render(lang)

    def as_dict(self, lang: str = "en") -> dict[str, object]:
        """The finding as JSON-ready values, its texts in ``lang``."""
        summary, fix = self.text(lang)
        return {
            "check": self.check,
            "status": self.status,
            "summary": summary,
            "fix": fix,
            "detail": dict(self.detail),
        }


def exit_code(findings: list[Finding]) -> int:
    """0 when everything is ok (or skipped), 1 with warnings, 2 with any failure."""
    statuses = {f.status for f in findings}
    if "fail" in statuses:
        return EXIT_FAIL
    return EXIT_WARN if "warn" in statuses else EXIT_OK


def aware(moment: datetime) -> datetime:
    """``moment`` with its time zone: SQLite gives naive UTC datetimes back."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def duration(seconds: float) -> str:
    """A short age for a finding's line: ``45 s``, ``12 min``, ``3.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
