"""The providers and the public address: Signal, Twilio and ``PUBLIC_BASE_URL``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from bots.signal.daemon import DaemonClient
from bots.signal.errors import SignalServiceError
from bots.sms.config import INBOUND_PATH
from cercle.settings import Settings
from relay.errors import DeliveryError, Reason
from relay.language.i18n import T

if TYPE_CHECKING:
    from cercle.bootstrap import App
from cercle.health.finding import Finding
from cercle.health.signal_daemon import check_signal_daemon, linked_devices

HTTP_TIMEOUT = httpx.Timeout(5.0)


async def check_signal(app: App, *, network: bool = True) -> Finding:
    """signal-cli-rest-api: reachable, json-rpc mode, the number registered, no linked device."""
    if app.providers.signal is None:
        return Finding("signal", "skip", T("Signal is not configured."))
    if not network:
        return Finding("signal", "skip", T("Signal not checked (no network checks)."))
    client = app.providers.signal.client
    if isinstance(client, DaemonClient):
        return await check_signal_daemon(client)
    try:
        about = await client.about()
    except SignalServiceError:
        return Finding(
            "signal",
            "fail",
            T("signal-cli-rest-api does not answer at SIGNAL_SERVICE."),
            T(
                "Start the signal-cli-rest-api container and check SIGNAL_SERVICE (host:port, "
                "docs/signal.md §1)."
            ),
        )
    detail: dict[str, object] = {"version": about.version, "mode": about.mode}
    if about.mode != "json-rpc":
        return Finding(
            "signal",
            "fail",
            T("signal-cli-rest-api runs in mode {mode}, not json-rpc.", mode=about.mode),
            T("Restart the container with MODE=json-rpc (docs/signal.md §1)."),
            detail,
        )
    try:
        accounts = await client.accounts()
    except DeliveryError as exc:
        return Finding(
            "signal",
            "fail",
            T("signal-cli-rest-api could not list its accounts ({reason}).", reason=exc.reason),
            T("Read the signal-cli-rest-api container's log."),
            detail,
        )
    registered = client.number in accounts
    detail["registered"] = registered
    if not registered:
        return Finding(
            "signal",
            "fail",
            T("SIGNAL_NUMBER is not registered with signal-cli-rest-api."),
            T(
                "Run `cercle signal register --captcha LINK`, then `cercle signal verify CODE` "
                "(docs/signal.md §2)."
            ),
            detail,
        )
    try:
        devices = await client.devices()
    except DeliveryError as exc:
        return Finding(
            "signal",
            "warn",
            T("Linked devices could not be listed ({reason}).", reason=exc.reason),
            T("Run `cercle signal status` later; read the container's log."),
            detail,
        )
    detail["devices"] = len(devices)
    if (danger := linked_devices(len(devices), detail)) is not None:
        return danger
    return Finding(
        "signal",
        "ok",
        T(
            "signal-cli-rest-api {version} answers in json-rpc mode; the number is registered.",
            version=about.version,
        ),
        None,
        detail,
    )


async def check_twilio(app: App, *, network: bool = True) -> Finding:
    """Twilio accepts our credentials and the account is active."""
    if app.providers.sms is None:
        return Finding("twilio", "skip", T("SMS is not configured."))
    if not network:
        return Finding("twilio", "skip", T("Twilio not checked (no network checks)."))
    try:
        status = await app.providers.sms.account_status()
    except DeliveryError as exc:
        if exc.reason is Reason.PROVIDER_DOWN and "20003" in exc.detail:
            return Finding(
                "twilio",
                "fail",
                T("Twilio refused the credentials."),
                T(
                    "Check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and "
                    "TWILIO_API_SECRET) against the Twilio Console."
                ),
            )
        return Finding(
            "twilio",
            "fail",
            T("Twilio could not be asked ({reason}).", reason=exc.reason),
            T("Check the network to TWILIO_API_BASE; try again in a few minutes."),
        )
    detail = {"account_status": status}
    if status != "active":
        return Finding(
            "twilio",
            "fail",
            T("The Twilio account is {status}.", status=status),
            T("Reactivate it in the Twilio Console (billing, or a suspension notice)."),
            detail,
        )
    return Finding(
        "twilio", "ok", T("Twilio accepts the credentials; the account is active."), None, detail
    )


async def check_public_url(
    settings: Settings, *, network: bool = True, http: httpx.AsyncClient | None = None
) -> Finding:
    """``PUBLIC_BASE_URL`` is https, this is Cercle's web process, and the webhook answers.

    The webhook is posted an unsigned, empty form: Cercle refuses it with 403, which shows
    the route exists and checks signatures. Nothing is accepted or stored.
    """
    base = settings.public_base_url
    if base is None:
        unset = T("PUBLIC_BASE_URL is not set (only SMS needs it).")
        return Finding("public_url", "skip", unset)
    if not base.startswith("https://"):
        return Finding(
            "public_url",
            "fail",
            T("PUBLIC_BASE_URL is not https: webhooks would travel unencrypted."),
            T("Serve the web process behind TLS and set PUBLIC_BASE_URL to its https:// address."),
        )
    if not network:
        return Finding("public_url", "ok", T("PUBLIC_BASE_URL is https (not called)."))
    client = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
    detail: dict[str, object] = {}
    try:
        health = await client.get(f"{base}/health")
        detail["health_status"] = health.status_code
        webhook = None
        if settings.sms_enabled:
            webhook = await client.post(
                f"{base}{INBOUND_PATH}",
                content=b"",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            detail["webhook_status"] = webhook.status_code
    except httpx.HTTPError as exc:
        return Finding(
            "public_url",
            "warn",
            T("PUBLIC_BASE_URL did not answer ({error}).", error=type(exc).__name__),
            T(
                "Normal before the web process starts. Otherwise check DNS, TLS and the proxy "
                "in front of `cercle web`."
            ),
            detail,
        )
    finally:
        if http is None:
            await client.aclose()
    if health.status_code != 200 or not _is_health(health):
        return Finding(
            "public_url",
            "fail",
            T(
                "PUBLIC_BASE_URL/health answered HTTP {code}, not Cercle's health.",
                code=health.status_code,
            ),
            T("Point PUBLIC_BASE_URL (with any path prefix, no trailing slash) at `cercle web`."),
            detail,
        )
    if webhook is not None and webhook.status_code != 403:
        return Finding(
            "public_url",
            "fail",
            T(
                "The SMS webhook answered HTTP {code} to an unsigned request, not 403.",
                code=webhook.status_code,
            ),
            T(
                "Check that the web process has the TWILIO_* settings and that the proxy "
                "forwards POST {path} (docs/sms.md §2).",
                path=INBOUND_PATH,
            ),
            detail,
        )
    return Finding(
        "public_url", "ok", T("PUBLIC_BASE_URL is https and Cercle answers there."), None, detail
    )


def _is_health(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "ok"
