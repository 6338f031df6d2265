"""An ``httpx`` implementation of ``twilio.http.HttpClient``, and a REST client built on it.

Why not twilio's own ``TwilioHttpClient``: it brings ``requests`` as a second HTTP stack, it
logs query strings (which can hold numbers), and respx cannot see it. This one:

- sends exactly one request per call. A POST to ``Messages.json`` that timed out may still
  have been accepted, so an automatic retry could text a survivor twice; whether to try
  again is the delivery engine's decision, never the HTTP layer's.
- has explicit connect/read/write/pool timeouts.
- logs method, status and elapsed time only: no URL (it names message SIDs), no body.
- keeps ``last_request``/``last_response`` for twilio's interface, but with the form values
  and response text redacted, so no number or body outlives the call in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import httpx
from twilio.http import HttpClient
from twilio.http.request import Request as TwilioRequest
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from bots.sms.config import SmsConfig

log = logging.getLogger(__name__)

_REDACTED = "<redacted>"


class HttpxTwilioClient(HttpClient):  # type: ignore[misc]  # twilio ships no type stubs
    """Synchronous ``twilio.http.HttpClient`` over one pooled ``httpx.Client``.

    Safe to share between worker threads (``httpx.Client`` is thread-safe); the SMS
    transport calls it through ``anyio.to_thread``.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(log, is_async=False, timeout=read_timeout)
        self._timeout = httpx.Timeout(
            read_timeout, connect=connect_timeout, write=read_timeout, pool=connect_timeout
        )
        # retries=0: httpx would only retry failed connects, but be explicit about it.
        self._client = httpx.Client(
            timeout=self._timeout,
            follow_redirects=False,
            transport=transport or httpx.HTTPTransport(retries=0),
        )

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Make one HTTP request; raise ``httpx.TransportError`` on network failure/timeout."""
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)
        method = method.upper()
        hdrs = dict(headers or {})
        content_type = hdrs.get("Content-Type", "")
        self._test_only_last_request = _redacted_request(method, url, params, data, hdrs)
        self._test_only_last_response = None
        started = time.monotonic()
        response = self._client.request(
            method,
            url,
            params=_query(params),
            data=None if content_type.endswith("json") else _form(data),
            json=dict(data) if content_type.endswith("json") and data is not None else None,
            headers=hdrs,
            auth=httpx.BasicAuth(*auth) if auth else None,
            timeout=self._timeout if timeout is None else httpx.Timeout(timeout),
            follow_redirects=allow_redirects,
        )
        log.debug(
            "twilio %s -> %d in %.0f ms",
            method,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        result = TwilioResponse(response.status_code, response.text, response.headers)
        self._test_only_last_response = TwilioResponse(
            response.status_code, _REDACTED if response.text else "", response.headers
        )
        return result

    @property
    def last_request(self) -> TwilioRequest | None:
        """The last request made, with form values redacted."""
        req: TwilioRequest | None = self._test_only_last_request
        return req

    @property
    def last_response(self) -> TwilioResponse | None:
        """Status and headers of the last response; its text is redacted."""
        resp: TwilioResponse | None = self._test_only_last_response
        return resp

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _query(params: Mapping[str, object] | None) -> dict[str, str | list[str]] | None:
    if not params:
        return None
    return {k: _form_value(v) for k, v in params.items() if v is not None}


def _form(data: Mapping[str, object] | None) -> dict[str, str | list[str]] | None:
    if not data:
        return None
    return {k: _form_value(v) for k, v in data.items() if v is not None}


def _form_value(value: object) -> str | list[str]:
    # twilio's serializers already turned booleans and dates into strings; lists stay lists
    # (repeated keys, e.g. MediaUrl).
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def _redacted_request(
    method: str,
    url: str,
    params: Mapping[str, object] | None,
    data: Mapping[str, object] | None,
    headers: Mapping[str, str],
) -> TwilioRequest:
    return TwilioRequest(
        method=method,
        url=url,
        params=dict.fromkeys(params, _REDACTED) if params else None,
        data=dict.fromkeys(data, _REDACTED) if data else None,
        headers={k: v for k, v in headers.items() if k.lower() != "authorization"},
    )


def build_rest_client(config: SmsConfig, http_client: HttpxTwilioClient | None = None) -> Client:
    """A ``twilio.rest.Client`` that talks to ``config.api_base`` through our httpx client.

    twilio 9.x builds every URL as ``Domain.base_url + uri`` (``twilio/base/domain.py``), and
    the Messages API lives on the ``api`` domain, so setting ``client.api.base_url`` points
    Messages and Media at an egress proxy or a test server. Edge/region rewriting
    (``ClientBase.get_hostname``) would rewrite that host again, so it is switched off: the
    base URL is the single source of truth.
    """
    http = http_client or HttpxTwilioClient(
        connect_timeout=config.connect_timeout, read_timeout=config.read_timeout
    )
    if config.api_key and config.api_secret:
        username, password = config.api_key, config.api_secret
    else:
        username, password = config.account_sid, config.auth_token
    # A non-empty environment mapping: twilio falls back to os.environ when given an empty
    # one, and TWILIO_EDGE/TWILIO_REGION there would silently change the host.
    client = Client(
        username,
        password,
        account_sid=config.account_sid,
        http_client=http,
        environment={"CERCLE": "1"},
    )
    client.edge = None
    client.region = None
    client.api.base_url = config.api_base.rstrip("/")
    return client
