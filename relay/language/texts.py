"""The operator-editable texts in ``config/texts/<lang>/`` (agreements, resources, consent).

They are plain files so an organization can adapt them without touching code. Consent texts
are versioned by content: a member's consent records the version they accepted.

A text may have words of its own for one channel: ``about.web.txt`` is what members who joined
from a web link read instead of ``about.txt``. Without such a file, every channel reads the
general one, so an organization's existing files keep working.
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

    def path(self, name: str, lang: str, channel: str | None = None) -> Path:
        """The file a member on ``channel`` reads: ``NAME.CHANNEL.txt`` if the organization
        (or Cercle) wrote one, else ``NAME.txt``."""
        folder = self.root / "texts" / lang
        if channel:
            own = folder / f"{name}.{channel}.txt"
            if own.is_file():
                return own
        return folder / f"{name}.txt"

    def raw(self, name: str, lang: str, channel: str | None = None) -> str:
        """The file's text for ``channel``, unfilled."""
        return _read(self.path(name, lang, channel))

    def fill(self, name: str, lang: str, channel: str | None = None, **params: object) -> str:
        """The text with ``{placeholders}`` filled (unknown ones are left as they are)."""
        return self.raw(name, lang, channel).strip().format_map(_Params(params))

    def consent_version(self, lang: str, sms: bool, *, web: bool = False) -> str:
        """A short digest of exactly the consent texts a member is shown."""
        digest = hashlib.sha256()
        extra = (SMS_PART,) if sms else (WEB_PART,) if web else ()
        channel = "sms" if sms else "web" if web else "signal"
        for name in (*CONSENT_PARTS, *extra):
            text = self.raw(name, lang, channel)
            digest.update(name.encode() + b"\x00" + text.encode() + b"\x00")
        return f"{lang}-{digest.hexdigest()[:12]}"

    def check(self) -> list[str]:
        """Problems an operator must fix: missing files, and a channel's own file written in
        one language only (members of the other language would read other words)."""
        missing = [
            f"config/texts/{lang}/{name}.txt is missing"
            for lang in LANGS
            for name in ALL_PARTS
            if not (self.root / "texts" / lang / f"{name}.txt").is_file()
        ]
        own = {
            lang: {p.name for p in (self.root / "texts" / lang).glob("*.*.txt")} for lang in LANGS
        }
        for lang in LANGS:
            for other in LANGS:
                missing += [
                    f"config/texts/{other}/{name} is missing (config/texts/{lang}/{name} exists)"
                    for name in sorted(own[lang] - own[other])
                ]
        return missing


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class ConfigText:
    """One of the config texts as a renderable: read in the recipient's language."""

    texts: Texts
    name: str
    params: tuple[tuple[str, object], ...] = ()
    channel: str | None = None  # whose words: None reads the general file

    def render(self, lang: str) -> str:
        """The filled text in ``lang``; parameters that are renderable are rendered too."""
        values = {k: (v.render(lang) if hasattr(v, "render") else v) for k, v in self.params}
        return self.texts.fill(self.name, lang, self.channel, **values)

    def for_channel(self, channel: str) -> ConfigText:
        """The same text in the words of ``channel`` (its own file, when there is one)."""
        return ConfigText(self.texts, self.name, self.params, channel)
