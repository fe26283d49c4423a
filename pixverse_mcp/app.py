"""The composition root: settings in; the storage, the one client and the service (with its helpers) out.

Every front end (the MCP server, the HTTP hosting, the terminal) opens the app here and takes what it needs from it;
none of them builds a client or opens storage of its own, and none imports another front end. Tests inject the HTTP
transport, the sleep and the clock instead of patching anything. Opening the app connects to nothing; it starts
the background work (settling uncertain creates a second later and then every few seconds, writing spooled ids,
keeping the journal to its retention), which reaches the network only when there is something to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import anyio
import anyio.to_thread
import httpx2

from pixverse_mcp import defaults
from pixverse_mcp.client import PixVerseClient, default_timeout
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import MissingAPIKeyError
from pixverse_mcp.files import VideoFiles, remove_leftover_downloads
from pixverse_mcp.inputs import InputLimits
from pixverse_mcp.money import Spending
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.service import ServiceOptions, VideoService
from pixverse_mcp.settle import SettlePolicy, Settler
from pixverse_mcp.spool import Spool
from pixverse_mcp.storage import Storage, StorageError, open_storage
from pixverse_mcp.timing import Expectations
from pixverse_mcp.watch import Watcher, process_name

logger = logging.getLogger(__name__)

# Retention runs this often (when `PIXVERSE_MCP_JOURNAL_KEEP_DAYS` is set).
_RETENTION_SECONDS: Final = 6 * 3600.0
# Settling looks again after this long at first (doubling), scaled like the polling schedule for the sandbox.
_SETTLE_FIRST_RETRY_SECONDS: Final = 2.0


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
    transport: httpx2.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
    background: bool = True,
) -> AsyncIterator[App]:
    """The storage, the one client and the service, for as long as the block runs (with the background work
    unless `background` is False)."""
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
            service = compose_service(client, storage, settings)
            async with anyio.create_task_group() as group:
                if background:
                    group.start_soon(service.settler.run)
                    group.start_soon(service.spool.run, storage)
                    if settings.journal_keep_days is not None:
                        group.start_soon(_keep_journal, storage, settings.journal_keep_days)
                try:
                    yield App(settings, storage, service)
                finally:
                    group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await storage.close()


def compose_service(client: PixVerseClient, storage: Storage, settings: Settings) -> VideoService:
    """The service and its helpers for these settings, on this client and storage."""
    instance = process_name()
    scale = settings.poll_time_scale
    return VideoService(
        client,
        storage,
        options=ServiceOptions(
            api=settings.base_url,
            wait_budget_seconds=settings.wait_budget_seconds,
            reattach_window_seconds=settings.reattach_window_seconds,
            settle_seconds=settings.settle_seconds,
            save_by_default=settings.save,
            input_folders=settings.input_dirs,
            input_limits=InputLimits.from_megabytes(
                settings.max_image_mb, defaults.MAX_VIDEO_INPUT_MB, defaults.MAX_AUDIO_INPUT_MB
            ),
        ),
        watcher=Watcher(client, storage, instance=instance, lease_seconds=settings.lease_seconds),
        files=VideoFiles(client, storage, folder=settings.videos_dir, max_bytes=settings.max_download_bytes),
        spending=Spending(
            client, storage, cap_usd=settings.daily_budget_usd, default_estimate_usd=settings.cost_estimate_usd
        ),
        expectations=Expectations(storage, client.polling_policy),
        spool=Spool(settings.state_dir / "spool.jsonl"),
        settler=Settler(
            client,
            storage,
            instance=instance,
            policy=SettlePolicy(
                settle_seconds=settings.settle_seconds,
                first_retry_seconds=_SETTLE_FIRST_RETRY_SECONDS * scale,
                lease_seconds=settings.lease_seconds,
            ),
        ),
    )


async def _keep_journal(storage: Storage, keep_days: float) -> None:
    """Drop finished generations older than `keep_days`, now and every few hours (never one still running)."""
    while True:
        try:
            if removed := await storage.prune(before=time.time() - keep_days * 86_400):
                logger.info("journal retention: removed %d finished generation(s)", removed)
        except StorageError as exc:
            logger.warning("journal retention waits for storage: %s", exc)
        await anyio.sleep(_RETENTION_SECONDS)
