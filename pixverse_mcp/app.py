"""The composition root: settings in; the storage, the one client and the service out.

Every front end (the MCP server, the HTTP hosting, the terminal) opens the app here and takes what it needs from it;
none of them builds a client or opens storage of its own, and none imports another front end. Tests inject the HTTP
transport, the sleep and the clock instead of patching anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.to_thread
import httpx

from pixverse_mcp.client import PixVerseClient, default_timeout, remove_leftover_downloads
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import MissingAPIKeyError
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.service import VideoService
from pixverse_mcp.storage import Storage, open_storage

logger = logging.getLogger(__name__)


@dataclass
class App:
    """What the server shares with every call: the settings, the storage (the journal), and the service (None
    without a usable key, and then `key_error` says why)."""

    settings: Settings
    storage: Storage
    service: VideoService | None
    key_error: MissingAPIKeyError | None = None

    def require_service(self) -> VideoService:
        """The service, or the `MissingAPIKeyError` that says how to configure a key."""
        if self.service is None:
            raise self.key_error or MissingAPIKeyError()
        return self.service


@asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[App]:
    """The storage, the one client and the service, for as long as the block runs. Nothing touches the network,
    the database or the disk until first used."""
    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    storage = open_storage(database_url, settings.journal_path)
    if removed := await anyio.to_thread.run_sync(remove_leftover_downloads, settings.videos_dir):
        logger.info("removed %d unfinished download(s) from %s", removed, settings.videos_dir)
    try:
        if (key_error := settings.api_key_error) is not None:
            logger.warning("%s Every video tool will say how to fix it.", key_error.problem)
            yield App(settings, storage, None, key_error)
            return
        async with PixVerseClient(
            api_key=settings.api_key,
            base_url=settings.base_url,
            endpoint_path=settings.endpoint_path,
            timeout=default_timeout(settings.connect_timeout_seconds, settings.read_timeout_seconds),
            polling_policy=PollingPolicy(time_scale=settings.poll_time_scale),
            transport=transport,
            sleep=sleep,
            clock=clock,
        ) as client:
            yield App(settings, storage, VideoService(client, storage, settings))
    finally:
        with anyio.CancelScope(shield=True):
            await storage.close()
