"""One poller per generation, across processes and replicas.

In one process the client already shares one polling loop among every watcher of an id. Across processes a lease
in storage decides who polls: the holder asks the API and journals what it hears (with when it last saw the video
still running, for the learnt ready times); the others follow the journal (no request to the API from them),
and take over when the holder stops renewing its lease, at once when it is a process of this machine that is gone.
When storage itself cannot be used, everyone polls the API: a wait never depends on the database being up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Final

import anyio

from pixverse_mcp.client import PixVerseClient, WaitUpdate
from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.polling import Expectation
from pixverse_mcp.storage import Storage, StorageError
from pixverse_mcp.text import printable

logger = logging.getLogger(__name__)

# How often a follower re-reads the journal at most when nothing tells it about a change.
_FOLLOW_HEARTBEAT_FLOOR: Final = 0.05


@dataclass(frozen=True)
class Watch:
    """What one wait is about: the generation, until when, and what is known of it so far."""

    generation_id: str
    deadline: float
    """On the event loop's clock (`anyio.current_time()`)."""
    expectation: Expectation
    elapsed_before: float = 0.0
    """Seconds between the generation's creation and the start of this wait."""
    known: Generation | None = None
    """The create's own answer, when this process just made it: reported first, and the first look can wait."""


class Watcher:
    """Waits on generations with at most one poller per generation among every process sharing `storage`."""

    def __init__(self, client: PixVerseClient, storage: Storage, *, instance: str, lease_seconds: float) -> None:
        self.client = client
        self.storage = storage
        self.instance = instance
        """This process's name as a lease holder: host/pid/random."""
        self.lease_seconds = lease_seconds
        self._renewed: dict[str, float] = {}

    async def updates(self, watch: Watch) -> AsyncGenerator[WaitUpdate, None]:
        """The updates of one generation until it is final, the deadline passes or the process drains (see
        `PixVerseClient.watch`), whoever polls it."""
        known = watch.known
        began = anyio.current_time()
        while anyio.current_time() < watch.deadline and not self.client.drain.stopping:
            # How long ago the generation was created, as of now: each stream counts its elapsed time from it.
            since_created = watch.elapsed_before + anyio.current_time() - began
            if await self._take_lease(watch.generation_id):
                handed_over = False
                try:
                    async with aclosing(self._poll(watch, known, since_created)) as polled:
                        async for update in polled:
                            yield update
                            if update.generation is not None and update.generation.status.is_final:
                                break  # the end, whoever holds the lease now
                            if not await self._keep_lease(watch.generation_id):
                                handed_over = True
                                break
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._release_lease(watch.generation_id)
                if not handed_over:
                    return
                logger.info("another process now polls %s; following it", printable(watch.generation_id))
                known = None  # stale by the time this process polls it again: look at once then
                continue
            takeover = False
            async with aclosing(self._follow(watch, since_created)) as followed:
                async for heard in followed:
                    if heard is None:
                        takeover = True
                        break
                    yield heard
            if not takeover:
                return

    async def _poll(
        self, watch: Watch, known: Generation | None, since_created: float
    ) -> AsyncGenerator[WaitUpdate, None]:
        """Poll the API (shared with this process's other watchers) and journal what this watcher's requests hear."""
        pending_until: float | None = None
        updates = self.client.watch(
            watch.generation_id,
            timeout=watch.deadline - anyio.current_time(),
            expectation=watch.expectation,
            elapsed_before=since_created,
            known=known,
        )
        async with aclosing(updates):
            async for update in updates:
                current = update.generation
                if update.polled and current is not None:
                    if not current.status.is_final:
                        pending_until = update.answered_at  # not ready then: its ready time is later
                    if update.status_changed:
                        await self._journal(current, pending_until)
                yield update

    async def _journal(self, generation: Generation, pending_until: float | None) -> None:
        try:
            await self.storage.record_status(generation, pending_until=pending_until)
        except StorageError as exc:
            logger.error("%s", exc)

    async def _follow(self, watch: Watch, since_created: float) -> AsyncGenerator[WaitUpdate | None, None]:
        """Updates from what another process's poller journals: no request to the API from here. Heartbeats as
        usual. Yields None when this process took the lease (the holder stopped renewing it). When the journal
        cannot be read, polls the API itself to the end (everyone does then; asking for the lease again would
        follow a live holder through an unreadable journal, round and round, and never ask the API)."""
        policy = self.client.polling_policy
        started = anyio.current_time()
        last_status: GenerationStatus | None = None
        last_heard = started
        next_takeover = started + self.lease_seconds / 3
        while True:
            now = anyio.current_time()
            try:
                entry = await self.storage.get(watch.generation_id)
            except StorageError as exc:
                logger.warning("following %s: %s; polling the API instead", printable(watch.generation_id), exc)
                async with aclosing(self._poll(watch, None, since_created + now - started)) as polled:
                    async for update in polled:
                        yield update
                return
            current = entry.as_generation() if entry is not None else None
            changed = current is not None and current.status is not last_status
            if changed or now - last_heard >= policy.heartbeat_seconds:
                elapsed = since_created + now - started
                yield WaitUpdate(watch.generation_id, current, elapsed, watch.expectation.typical, changed)
                last_heard = now
                last_status = current.status if current is not None else None
            if (current is not None and current.status.is_final) or now >= watch.deadline:
                return
            if self.client.drain.stopping:
                return
            if now >= next_takeover:
                if await self._take_lease(watch.generation_id):
                    yield None
                    return
                next_takeover = now + self.lease_seconds / 3
            wake = min(watch.deadline, last_heard + policy.heartbeat_seconds, next_takeover)
            with self.client.drain.guard(), contextlib.suppress(StorageError):  # the next read says so
                await self.storage.wait_for_change(
                    watch.generation_id, timeout=max(_FOLLOW_HEARTBEAT_FLOOR, wake - now)
                )

    async def _take_lease(self, generation_id: str) -> bool:
        """Whether this process polls the generation now (it holds the lease, or storage cannot say)."""
        ttl = self.lease_seconds
        try:
            holder = await self.storage.hold_lease(generation_id, self.instance, ttl_seconds=ttl)
            if holder is not None and is_dead_here(holder):
                # A process of this machine that is gone (a restart): no need to wait out its lease.
                holder = await self.storage.hold_lease(generation_id, self.instance, ttl_seconds=ttl, replacing=holder)
        except StorageError as exc:
            logger.warning("no polling lease for %s (%s): polling it anyway", printable(generation_id), exc)
            return True
        if holder is None:
            self._renewed[generation_id] = anyio.current_time()
        return holder is None

    async def _keep_lease(self, generation_id: str) -> bool:
        """Renew the lease when a third of it has passed; False once another process holds it."""
        renewed = self._renewed.get(generation_id, 0.0)
        if anyio.current_time() - renewed < self.lease_seconds / 3:
            return True
        return await self._take_lease(generation_id)

    async def _release_lease(self, generation_id: str) -> None:
        self._renewed.pop(generation_id, None)
        try:
            await self.storage.release_lease(generation_id, self.instance)
        except StorageError as exc:
            logger.warning("could not release the polling lease on %s: %s", printable(generation_id), exc)


def process_name() -> str:
    """This process's name in storage (lease holder, create sender): host/pid/random."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


def is_dead_here(holder: str) -> bool:
    """Whether a process name ("host/pid/random") is a process of this machine that no longer runs."""
    host, _, rest = holder.partition("/")
    pid, _, _ = rest.partition("/")
    if os.name == "nt" or host != socket.gethostname() or not pid.isdigit():
        return False  # (on Windows, os.kill would end the process it asks about)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (perhaps another user's): not ours to judge
    return False
