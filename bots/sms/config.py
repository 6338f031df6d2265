"""Settings the SMS adapter needs, as plain values the core's settings module fills in.

The adapter never reads the environment itself: ``cercle.settings`` reads it once and builds
an :class:`SmsConfig`. Secrets stay out of ``repr`` so a config can be logged or shown in a
traceback without leaking them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_API_BASE = "https://api.twilio.com"
INBOUND_PATH = "/twilio/sms"
STATUS_PATH = "/twilio/status"

# How long Twilio may keep a message queued before giving up on it. A message to a support
# group that arrives hours late is confusing at best (the session is over, the timer has
# run); ten minutes covers ordinary long-code queueing (1 segment/s) for a small group.
DEFAULT_VALIDITY_PERIOD = 600


@dataclass(frozen=True, slots=True)
class SmsConfig:
    """Everything Twilio-specific, already validated by the settings layer.

    Exactly one of ``number`` / ``messaging_service_sid`` names the sender (the Messaging
    Service wins when both are set: it is what enables ``ValidityPeriod`` and Advanced
    Opt-Out). ``api_key``/``api_secret`` authenticate REST calls when set; webhook signatures
    are always computed by Twilio with the account's ``auth_token``, so that one is required.
    """

    account_sid: str
    auth_token: str = field(repr=False)
    public_base_url: str
    number: str | None = field(default=None, repr=False)
    messaging_service_sid: str | None = None
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    api_base: str = DEFAULT_API_BASE
    validity_period: int | None = DEFAULT_VALIDITY_PERIOD
    supports_media: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    media_max_bytes: int = 5 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.account_sid.startswith("AC"):
            raise ValueError("TWILIO_ACCOUNT_SID must start with AC")
        if not self.auth_token:
            raise ValueError("TWILIO_AUTH_TOKEN is required to verify webhook signatures")
        if not (self.number or self.messaging_service_sid):
            raise ValueError("set TWILIO_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if not self.public_base_url.startswith(("https://", "http://")):
            raise ValueError("PUBLIC_BASE_URL must be an absolute http(s) URL")
        if (self.api_key is None) != (self.api_secret is None):
            raise ValueError("set both TWILIO_API_KEY and TWILIO_API_SECRET, or neither")
        if self.validity_period is not None and not 1 <= self.validity_period <= 36000:
            raise ValueError("the validity period must be between 1 and 36000 seconds")

    @property
    def base_url(self) -> str:
        """``PUBLIC_BASE_URL`` without a trailing slash."""
        return self.public_base_url.rstrip("/")

    @property
    def status_callback_url(self) -> str:
        """The URL Twilio posts delivery status to (and signs callbacks for)."""
        return self.base_url + STATUS_PATH

    @property
    def inbound_url(self) -> str:
        """The URL to paste into the number's (or service's) inbound webhook setting."""
        return self.base_url + INBOUND_PATH
