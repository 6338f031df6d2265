"""The operator-editable texts in ``config/texts/<lang>/`` (agreements, resources, consent).

They are plain files so an organization can adapt them without touching code. Consent texts
are versioned by content: a member's consent records the version they accepted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from relay.language.i18n import LANGS

CONSENT_PARTS = ("about", "agreements", "privacy", "how_to_leave", "consent_prompt")
SMS_PART = "sms_notice"
WEB_PART = "web_notice"  # what a member who joins from a web link is told
ALL_PARTS = (*CONSENT_PARTS, SMS_PART, WEB_PART, "resources")


def default_config_dir() -> Path:
    """``CERCLE_CONFIG_DIR``, else ``./config`` when present, else the repository's config/."""
    env = os.environ.get("CERCLE_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path.cwd() / "config"
    if (local / "texts").is_dir():
        return local
    return Path(__file__).resolve().parent.parent.parent / "config"


class _Params(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Texts:
    """Loads and fills the texts of one config directory."""

    root: Path

    def raw(self, name: str, lang: str) -> str:
        """The file's text, unfilled."""
        return _read(self.root / "texts" / lang / f"{name}.txt")

    def fill(self, name: str, lang: str, **params: object) -> str:
        """The text with ``{placeholders}`` filled (unknown ones are left as they are)."""
        return self.raw(name, lang).strip().format_map(_Params(params))

    def consent_version(self, lang: str, sms: bool, *, web: bool = False) -> str:
        """A short digest of exactly the consent texts a member is shown."""
        digest = hashlib.sha256()
        extra = (SMS_PART,) if sms else (WEB_PART,) if web else ()
        for name in (*CONSENT_PARTS, *extra):
            digest.update(name.encode() + b"\x00" + self.raw(name, lang).encode() + b"\x00")
        return f"{lang}-{digest.hexdigest()[:12]}"

    def check(self) -> list[str]:
        """Problems an operator must fix: missing files, per language."""
        return [
            f"config/texts/{lang}/{name}.txt is missing"
            for lang in LANGS
            for name in ALL_PARTS
            if not (self.root / "texts" / lang / f"{name}.txt").is_file()
        ]


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class ConfigText:
    """One of the config texts as a renderable: read in the recipient's language."""

    texts: Texts
    name: str
    params: tuple[tuple[str, object], ...] = ()

    def render(self, lang: str) -> str:
        """The filled text in ``lang``; parameters that are renderable are rendered too."""
        values = {k: (v.render(lang) if hasattr(v, "render") else v) for k, v in self.params}
        return self.texts.fill(self.name, lang, **values)
