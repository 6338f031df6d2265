"""The Signal adapter: signal-cli-rest-api (json-rpc mode) or signal-cli's own JSON-RPC daemon,
behind one seam (:class:`SignalBackend`) and the core's Transport.

Wiring, in the worker::

    client = SignalClient(settings.signal_service, settings.signal_number)
    # or: client = DaemonClient(settings.signal_cli, settings.signal_number)
    await client.check()                      # json-rpc mode, reachable
    transport = SignalTransport(client)       # relay.transport.Transport
    receiver = SignalReceiver(transport, accept, stash)  # stash: relay.transport.InboundStash
    tg.start_soon(receiver.run)               # ... receiver.stop() to end

Each received frame goes through :class:`bots.signal.intake.FrameIntake`: written to the
stash (the durable inbox) before anything else, then handed to ``accept``.
"""

from bots.signal.client import SignalClient
from bots.signal.daemon import DaemonClient
from bots.signal.envelope import AttachmentRef, Dropped, DropReason, ParsedMessage, parse_frame
from bots.signal.errors import SignalServiceError
from bots.signal.receiver import SignalReceiver
from bots.signal.seam import SignalBackend
from bots.signal.transport import SignalTransport
from bots.signal.values import About, Device, OutgoingFile

__all__ = [
    "About",
    "AttachmentRef",
    "DaemonClient",
    "Device",
    "DropReason",
    "Dropped",
    "OutgoingFile",
    "ParsedMessage",
    "SignalBackend",
    "SignalClient",
    "SignalReceiver",
    "SignalServiceError",
    "SignalTransport",
    "parse_frame",
]
