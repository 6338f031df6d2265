"""``cercle sandbox``: rehearse a group in the terminal, over the loopback transport.

The relay is the real one (database, encryption, outbox, delivery engine, commands); only the
phones are simulated. Type as any member and see exactly what every phone shows.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import anyio
from rich.console import Console

from bots.sandbox.transport import Delivered, LoopbackTransport
from bots.web.transport import WebTransport
from cercle.bootstrap import App, bootstrap
from cercle.settings import Secret, Settings
from relay.clock import SystemClock
from relay.delivery.sender import Deliverer
from relay.doors import new_address, new_token
from relay.errors import CercleError
from relay.groups import invites
from relay.inbound.join_notices import announce_due
from relay.language.durations import parse_duration
from relay.messages import Channel, Inbound, Sender
from relay.service import links
from relay.service.groups import create_invite
from relay.service.jobs import run_due
from relay.service.relay import GroupSettings
from relay.service.video import end_now, set_video, start_now
from relay.service.web_seats import WebStore
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import Role

KEY_FILE = Path(".cercle-sandbox.key")
DB_FILE = Path("cercle-sandbox.db")
GROUP = "rehearsal"
# Where rehearsal video links point unless CERCLE_VIDEO_URL names the organization's own
# server: a reserved name that never resolves, so a rehearsal never reaches any service.
SANDBOX_VIDEO_URL = "https://video.rehearsal.invalid"
# Fictional numbers: 555-01xx is reserved for fiction in every North American area code.
CAST: tuple[tuple[str, Role, str], ...] = (
    ("fac", Role.FACILITATOR, "fr"),
    ("alice", Role.MEMBER, "en"),
    ("bruno", Role.MEMBER, "fr"),
    ("chloe", Role.MEMBER, "en"),
)

HELP = """\
Type  [bold]NAME: message[/]  to write as someone, e.g.  [bold]alice: hello[/]  or  \
[bold]fac: /who[/]
  :agree           everyone who has not agreed yet replies with the agree word
  :add NAME \\[fr|en] \\[member|facilitator] \\[--web]   enroll another simulated phone
                   (--web: a browser that joined from a private link, with no number)
  :show NAME       everything NAME's phone shows, numbered
  NAME: >3 text    reply quoting line 3 of NAME's :show, e.g.  [bold]fac: >3 /delete off topic[/]
  :wait 2h         let time pass (mutes, leave confirmations, session reminders)
  :session 1h      start a video session now, for that long: everyone who agreed gets their
                   own link (:session end  ends it; the links are taken back)
  :help            this list          :quit   leave the sandbox
"""


class ShiftedClock(SystemClock):
    """The real clock plus an offset the rehearsal can push forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """Real time plus the offset."""
        return super().now() + self.offset


def sandbox_key(console: Console) -> str:
    """The sandbox's own key, in a file only its owner can read (created on first use)."""
    if KEY_FILE.exists():
        return KEY_FILE.read_text().strip()
    key = generate_key()
    fd = os.open(KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    console.print(
        f"[dim]Created a sandbox data key in {KEY_FILE} (readable by you only). "
        "It is for rehearsals: never use it for a real group.[/]"
    )
    return key


@dataclass
class Phone:
    """A simulated phone in the rehearsal (or, with ``web``, a browser on the web door)."""

    handle: str
    number: str  # for a browser: its seat's opaque address
    seen: int = 0
    web: bool = False


@dataclass
class Sandbox:
    """The rehearsal: an app on the loopback transport and the simulated phones."""

    app: App
    transport: LoopbackTransport
    clock: ShiftedClock
    console: Console
    phones: dict[str, Phone] = field(default_factory=dict)
    counter: int = 0

    @classmethod
    def start(cls, console: Console, settings: Settings, *, fresh: bool = True) -> Sandbox:
        """Create the sandbox database, group and cast."""
        if fresh:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{DB_FILE}{suffix}").unlink(missing_ok=True)
        key = sandbox_key(console)
        settings = Settings(
            **{**settings.__dict__, "database_url": f"sqlite:///{DB_FILE}", "data_key": Secret(key)}
        )
        transport = LoopbackTransport()
        clock = ShiftedClock()
        app = bootstrap(settings, clock=clock, transports={Channel.SANDBOX: transport})
        app.relay.video_url = settings.video_url or SANDBOX_VIDEO_URL
        upgrade(app.engine)
        # Browsers on the web door (`:add NAME --web`) read their copies from the same store
        # as the real door.
        app.transports[Channel.WEB] = WebTransport(WebStore(app.engine, app.keys, clock))
        app.deliverer = Deliverer(app.relay, app.transports)
        box = cls(app, transport, clock, console)
        app.relay.create_group(
            GroupSettings(
                name=GROUP, lang="fr", timer_seconds=86400, allow_rename=True, allow_media=True
            )
        )
        for handle, role, lang in CAST:
            box.add(handle, lang, role, quiet=True)
        box.deliver()
        return box

    def add(
        self,
        handle: str,
        lang: str = "en",
        role: Role = Role.MEMBER,
        *,
        quiet: bool = False,
        web: bool = False,
    ) -> None:
        """Enroll another simulated phone, or a browser that opened a private link."""
        if handle in self.phones:
            raise CercleError(f"{handle} is already in the rehearsal.")
        if web:
            self.phones[handle] = Phone(handle, self._join_by_link(lang, role), web=True)
        else:
            number = f"+1514555{101 + len(self.phones):04d}"
            self.app.relay.enroll(number, GROUP, role, lang, Channel.SANDBOX)
            self.phones[handle] = Phone(handle, number)
        if not quiet:
            self.deliver()

    @property
    def web(self) -> WebStore:
        """The web door's seats and copies in this rehearsal (behind its transport)."""
        transport = self.app.transports[Channel.WEB]
        assert isinstance(transport, WebTransport)  # noqa: S101 - set by start
        assert isinstance(transport.store, WebStore)  # noqa: S101 - set by start
        return transport.store

    def _join_by_link(self, lang: str, role: Role) -> str:
        """What opening a private link and agreeing does; returns the seat's address."""
        relay, store = self.app.relay, self.web
        code = create_invite(relay, GROUP, timedelta(hours=1), role, lang)
        address = new_address()
        joined = links.join(
            relay,
            invites.link_token(relay.keys, code),  # what the link carries
            Channel.WEB,
            address,
            lambda s, m, g: store.new_seat(
                s, m.id or 0, new_token(), address, g.timer_seconds, self.clock.now()
            ),
        )
        if joined is None:
            raise CercleError("The invite link could not be used.")
        return address

    def _show_page(self, phone: Phone) -> None:
        """What a browser's page shows since last time (its copies are then wiped)."""
        store = self.web
        seat = store.seat_hash(phone.number)
        copies = store.fetch(seat, phone.seen)
        for copy in copies:
            if copy.kind == "delete":
                self.console.print(f"[cyan]→ {phone.handle}[/] [dim]has a message deleted[/]")
                continue
            self.console.print(f"[cyan]→ {phone.handle}[/][dim]'s page shows:[/]")
            self.console.print(
                "   " + copy.text.replace("\n", "\n   "), markup=False, highlight=False
            )
        if copies:
            phone.seen = copies[-1].id
            store.ack(seat, phone.seen)

    def deliver(self) -> None:
        """Run the real delivery engine, then show what each phone received."""
        assert self.app.deliverer is not None  # noqa: S101 - the sandbox always has one
        announce_due(self.app.engine, self.app.keys, self.clock.now())  # quiet joins
        anyio.run(self.app.deliverer.drain)
        for phone in self.phones.values():
            if phone.web:
                self._show_page(phone)
                continue
            inbox = self.transport.inbox.get(phone.number, [])
            lines = self.lines(phone)
            for item in inbox[phone.seen :]:
                if item.delete_ref is not None:
                    self.console.print(f"[cyan]→ {phone.handle}[/] [dim]has a message deleted[/]")
                    continue
                number = next((i for i, line in enumerate(lines, 1) if line is item), None)
                label = f" ({number})" if number else ""
                self.console.print(f"[cyan]→ {phone.handle}[/] [dim]receives{label}:[/]")
                self.console.print(
                    "   " + item.text.replace("\n", "\n   "), markup=False, highlight=False
                )
                for ctype, name, _ in item.attachments:
                    self.console.print(f"   [dim][attachment {name} ({ctype})][/]")
            phone.seen = len(inbox)

    def lines(self, phone: Phone) -> list[Delivered]:
        """The messages ``phone`` shows, in order: what ``:show`` numbers and ``>N`` quotes
        (deletes and edits change lines, they are not lines of their own)."""
        inbox = self.transport.inbox.get(phone.number, [])
        return [d for d in inbox if d.delete_ref is None and d.edit_ref is None]

    def say(self, handle: str, text: str) -> None:
        """Send ``text`` as ``handle`` through the relay; ``>N text`` quotes line N."""
        phone = self.phones.get(handle)
        if phone is None:
            self.console.print(f"[red]No one called {handle} in the rehearsal.[/]")
            return
        quoted: Delivered | None = None
        if match := re.fullmatch(r">(\d+)\s*(.*)", text, re.DOTALL):
            lines = self.lines(phone)
            n = int(match.group(1))
            if not 1 <= n <= len(lines):
                self.console.print(
                    f"[red]{handle}'s phone has no line {n} (see :show {handle}).[/]"
                )
                return
            quoted, text = lines[n - 1], match.group(2)
        self.counter += 1
        self.app.relay.accept(
            Inbound(
                channel=Channel.WEB if phone.web else Channel.SANDBOX,
                sender=Sender(address=phone.number),
                dedup_key=f"sandbox:{self.counter}",
                text=text,
                ref=str(self.counter),
                quote_ref=quoted.ref if quoted else None,
                quote_text=quoted.text if quoted else None,
            )
        )
        self.deliver()

    def session(self, length: str) -> None:
        """Start a video session now for ``length`` (``end``: end the running one), as the
        worker does at a scheduled session's start and end."""
        if length == "end":
            if end_now(self.app.relay, GROUP):  # forgets the room, takes the links back
                self.console.print("[dim]The video session has ended.[/]")
            else:
                self.console.print("[dim]No video session is running.[/]")
        else:
            seconds = parse_duration(length)
            if seconds is None:
                raise CercleError("Give a length such as 1h or 90m, or end.")
            set_video(self.app.relay, GROUP, True)
            ends = self.clock.now() + timedelta(seconds=seconds)
            sent = start_now(self.app.relay, GROUP, ends)
            self.console.print(f"[dim]A video session starts now: {sent} links go out.[/]")
            if self.app.relay.video_url == SANDBOX_VIDEO_URL:
                self.console.print(
                    "[dim](Rehearsal links point nowhere; with CERCLE_VIDEO_URL set they "
                    "point to your own server.)[/]"
                )
        self.deliver()

    def show(self, handle: str) -> None:
        """Everything one phone shows."""
        phone = self.phones.get(handle)
        if phone is None:
            self.console.print(f"[red]No one called {handle}.[/]")
            return
        if phone.web:
            self.console.print("[dim](a browser keeps only what it was shown)[/]")
            return
        inbox = self.transport.inbox.get(phone.number, [])
        deleted = {d.delete_ref for d in inbox if d.delete_ref}
        edited = {d.edit_ref: d.text for d in inbox if d.edit_ref}
        for i, item in enumerate(self.lines(phone), 1):
            text = "(deleted)" if item.ref in deleted else edited.get(item.ref, item.text)
            pad = " " * (len(str(i)) + 2)
            self.console.print(f"{i}. " + text.replace("\n", "\n" + pad), markup=False)

    def handle_line(self, line: str) -> bool:
        """Act on one line typed by the person rehearsing; ``False`` means quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith(":"):
            return self._meta(line[1:].split())
        handle, sep, text = line.partition(":")
        if not sep or " " in handle.strip():
            self.console.print("[yellow]Write NAME: message, or :help[/]")
            return True
        self.say(handle.strip().lower(), text.strip())
        return True

    def _meta(self, words: list[str]) -> bool:
        cmd, args = (words[0].lower(), words[1:]) if words else ("help", [])
        try:
            if cmd in ("quit", "exit", "q"):
                return False
            if cmd == "agree":
                for phone in self.phones.values():
                    if not phone.web:  # a browser agreed on the join page
                        self.say(phone.handle, "AGREE")
            elif cmd == "add" and args:
                lang = next((a for a in args[1:] if a in ("fr", "en")), "en")
                role = Role.FACILITATOR if "facilitator" in args[1:] else Role.MEMBER
                self.add(args[0].lower(), lang, role, web="--web" in args[1:])
            elif cmd == "session" and args:
                self.session(args[0].lower())
            elif cmd == "show" and args:
                self.show(args[0].lower())
            elif cmd == "wait" and args and (seconds := parse_duration(" ".join(args))):
                self.clock.offset += timedelta(seconds=seconds)
                self.console.print(f"[dim]… {' '.join(args)} later[/]")
                run_due(self.app.relay)  # what the worker does each minute: reminders, endings
                self.deliver()
            else:
                self.console.print(HELP)
        except CercleError as exc:
            self.console.print(f"[red]{exc.safe_message}[/]")
        return True


def run_sandbox(
    settings: Settings, lines: Iterable[str] | None = None, out: TextIO | None = None
) -> None:
    """Run a rehearsal: interactive on a terminal, or reading ``lines`` (e.g. piped input)."""
    console = Console(file=out or sys.stdout, highlight=False, soft_wrap=True)
    # The rehearsal shows what phones show; operational logs would only get in the way.
    logging.getLogger().setLevel(logging.WARNING)
    console.print(
        "[bold]Cercle sandbox[/]: a rehearsal group on this machine. No message leaves it."
    )
    box = Sandbox.start(console, settings)
    names = {m.id: m.pseudonym for m in box.app.relay.roster(GROUP)}
    cast = ", ".join(
        f"{h} ({r}, {lang}, called {name})"
        for (h, r, lang), name in zip(CAST, names.values(), strict=True)
    )
    console.print(
        f"Group [bold]{GROUP}[/] with: {cast}. Each has received the welcome and "
        "must agree first (try [bold]:agree[/])."
    )
    console.print(HELP)
    try:
        if lines is not None:
            for line in lines:
                if not box.handle_line(line):
                    break
            return
        while True:
            try:
                line = console.input("[bold]> [/]")
            except EOFError:
                break
            if not box.handle_line(line):
                break
    finally:
        box.app.close()
