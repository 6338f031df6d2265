"""signal-cli-rest-api's receive websocket as a stream of frames."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import wsproto.events
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, WebSocketNetworkError, aconnect_ws

log = logging.getLogger(__name__)

# Frames are small JSON; this allows long texts and many attachment descriptions.
MAX_FRAME_BYTES = 1024 * 1024


@asynccontextmanager
async def websocket_frames(
    url: str, http: httpx.AsyncClient, *, keepalive: float | None
) -> AsyncIterator[AsyncIterator[object]]:
    """Open the websocket at ``url``; inside the block, each text frame until it closes.
    Close codes and exception types are logged, never a frame's content."""
    async with aconnect_ws(
        url,
        http,
        max_message_size_bytes=MAX_FRAME_BYTES,
        keepalive_ping_interval_seconds=keepalive,
        keepalive_ping_timeout_seconds=keepalive,
        session_class=AsyncWebSocketSession,
    ) as ws:

        async def frames() -> AsyncIterator[object]:
            while True:
                try:
                    event = await ws.receive()
                except WebSocketDisconnect as exc:
                    log.info("signal receive: closed by the server (code %s)", exc.code)
                    return
                except WebSocketNetworkError:
                    log.warning("signal receive: connection lost")
                    return
                if isinstance(event, (wsproto.events.TextMessage, wsproto.events.BytesMessage)):
                    yield event.data

        yield frames()
