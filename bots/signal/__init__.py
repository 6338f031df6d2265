"""The Signal adapter: signal-cli-rest-api (json-rpc mode) behind the core's Transport.

Wiring, in the worker::

    client = SignalClient(settings.signal_service, settings.signal_number)
    await client.check()                      # json-rpc mode, reachable
    transport = SignalTransport(client)       # relay.transport.Transport
    receiver = SignalReceiver(transport, accept)
    tg.start_soon(receiver.run)               # ... receiver.stop() to end
"""

from bots.signal.client import About, Device, OutgoingFile, SignalClient
from bots.signal.envelope import AttachmentRef, Dropped, DropReason, ParsedMessage, parse_frame
from bots.signal.errors import SignalServiceError
from bots.signal.receiver import SignalReceiver
from bots.signal.transport import SignalTransport

__all__ = [
    "About",
    "AttachmentRef",
    "Device",
    "DropReason",
    "Dropped",
    "OutgoingFile",
    "ParsedMessage",
    "SignalClient",
    "SignalReceiver",
    "SignalServiceError",
    "SignalTransport",
    "parse_frame",
]
