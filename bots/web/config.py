"""Settings the web door needs, as plain values the application's settings fill in."""

from __future__ import annotations

from dataclasses import dataclass, field

from bots.web.client import TrustedProxies

JOIN_PATH = "/j/"
CHAT_PATH = "/c"
ASSETS_PATH = "/w"
DEFAULT_TITLE = "Notes"
DEFAULT_EXIT_URL = "https://www.wikipedia.org/"


@dataclass(frozen=True, slots=True)
class WebConfig:
    """What the web door shows and how much it holds.

    ``title`` is the neutral name the tab shows (never the group's or the organization's);
    ``exit_url`` is where the quick exit goes. ``max_streams`` bounds the live connections one
    web process holds (each is a few KB); ``poll`` is how often, on SQLite, the process looks
    for copies written by a worker in another process (PostgreSQL wakes it with NOTIFY).
    ``proxies`` says whose ``X-Forwarded-For`` names the client (:mod:`bots.web.client`).
    """

    public_base_url: str
    title: str = DEFAULT_TITLE
    exit_url: str = DEFAULT_EXIT_URL
    max_streams: int = 2000
    streams_per_seat: int = 3
    poll: float = 0.1
    keepalive: float = 15.0
    joins_per_hour: int = 20  # per client source (bots.web.client), in memory only
    proxies: TrustedProxies = field(default_factory=TrustedProxies.local)
    remember_days: int = 30

    @property
    def base_url(self) -> str:
        """``PUBLIC_BASE_URL`` without a trailing slash."""
        return self.public_base_url.rstrip("/")

    @property
    def secure(self) -> bool:
        """Whether cookies must be marked Secure (the public URL is https)."""
        return self.public_base_url.startswith("https://")

    def join_link(self, code: str) -> str:
        """The private link that admits one person with ``code``."""
        return f"{self.base_url}{JOIN_PATH}{code}"
