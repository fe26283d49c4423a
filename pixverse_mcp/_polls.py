"""One polling loop per generation id in this process, however many callers watch it.

Every watcher of an id shares a `_Poll`: one of them (the poller) sends the status requests on the schedule, every
one hears each answer; when the poller leaves (its deadline, a cancel), the next watcher to look takes over. What a
watcher sees is a stream of `WaitUpdate`s it pulls (`SharedPolls.watch`); no cancel scope stays open across the
stream's yields: each await that may last is guarded by the drain (`drain.py`) on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import anyio

from pixverse_mcp._retry import RetryPolicy
from pixverse_mcp.drain import Drain
from pixverse_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    RateLimitError,
    UnexpectedResponseError,
    UpstreamServerError,
)
from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.polling import Expectation, PollingPolicy
from pixverse_mcp.text import printable

logger = logging.getLogger(__name__)

# Failures during a wait that say nothing about the generation itself: the wait goes on until its deadline.
_TRANSIENT_DURING_WAIT: Final = (APIConnectionError, UpstreamServerError, RateLimitError, UnexpectedResponseError)
GetStatus = Callable[[str, float], Awaitable[Generation]]
"""One status request for an id, bounded by a number of seconds (no retries: the schedule is the retry)."""


@dataclass(frozen=True)
class WaitUpdate:
    """One event of a wait: after every status answer, and as a heartbeat in between."""

    generation_id: str
    generation: Generation | None
    """The latest answer, or None while no status request has succeeded yet."""
    elapsed_seconds: float
    expected_seconds: float
    status_changed: bool
    """True when this update carries a status different from the previous one (the first answer counts)."""
    answer: bool = True
    """True when this update carries a new answer from the API (False: a heartbeat between answers)."""
    polled: bool = False
    """True for the one watcher whose own status request brought this answer (it journals it; the others heard)."""
    answered_at: float | None = None
    """When that answer arrived (`time.time()`), for the journal's ready times."""

    @property
    def status(self) -> GenerationStatus | None:
        """The latest known status."""
        return self.generation.status if self.generation else None


@dataclass(eq=False)
class _Poll:
    """The shared state of every concurrent watcher of one generation id."""

    started: float
    """Clock reading when the generation was created (as best we know)."""
    expectation: Expectation
    next_due: float
    latest: Generation | None = None
    answered_at: float | None = None
    answered_by: object | None = None
    version: int = 0
    watchers: int = 0
    poller: object | None = None
    """The watcher that sends the status requests; None when nobody does (the next one to look takes over)."""
    changed: anyio.Event = field(default_factory=anyio.Event)

    def announce(self, generation: Generation, by: object) -> None:
        """Publish a new answer and wake every watcher."""
        self.latest, self.answered_at, self.answered_by = generation, time.time(), by
        self.version += 1
        self.wake()

    def wake(self) -> None:
        """Wake every watcher (the poller left: one of them takes over)."""
        self.changed.set()
        self.changed = anyio.Event()


@dataclass(eq=False)
class _Watcher:
    """One caller's view of a shared poll: what it has been told so far."""

    poll: _Poll
    deadline: float
    last_heard: float
    seen: int = 0
    last_status: GenerationStatus | None = None


class SharedPolls:
    """The polls of one client: at most one polling loop per generation id in this process."""

    def __init__(
        self,
        get: GetStatus,
        policy: PollingPolicy,
        *,
        retry_policy: RetryPolicy,
        drain: Drain,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._get = get
        self._policy = policy
        self._retry_policy = retry_policy
        self._drain = drain
        self._sleep = sleep
        self._clock = clock
        self._polls: dict[str, _Poll] = {}

    async def watch(
        self,
        generation_id: str,
        *,
        timeout: float,
        expectation: Expectation | None,
        elapsed_before: float,
        known: Generation | None,
    ) -> AsyncGenerator[WaitUpdate, None]:
        """See `PixVerseClient.watch`."""
        poll = self._join(generation_id, expectation, elapsed_before, known)
        me = _Watcher(poll, self._clock() + timeout, self._clock())
        try:
            while True:
                if poll.version != me.seen and poll.latest is not None:
                    news = self._news(generation_id, me)
                    yield news
                    if news.status is not None and news.status.is_final:
                        return
                if self._clock() >= me.deadline or self._drain.stopping:
                    return
                if await self._step(generation_id, me):
                    continue  # this watcher just polled: its answer comes first
                if self._clock() >= me.last_heard + self._policy.heartbeat_seconds and poll.version == me.seen:
                    me.last_heard = self._clock()
                    yield self._update(generation_id, me, answer=False)
        finally:
            self._leave(generation_id, me)

    def _join(
        self, generation_id: str, expectation: Expectation | None, elapsed_before: float, known: Generation | None
    ) -> _Poll:
        poll = self._polls.get(generation_id)
        if poll is None:
            expectation = expectation or self._policy.expectation()
            now = self._clock()
            first = now if known is None else now + self._policy.next_delay(elapsed_before, expectation)
            poll = _Poll(started=now - elapsed_before, expectation=expectation, next_due=first)
            if known is not None:
                poll.latest, poll.answered_at, poll.version = known, time.time(), 1
            self._polls[generation_id] = poll
        poll.watchers += 1
        return poll

    def _leave(self, generation_id: str, me: _Watcher) -> None:
        poll = me.poll
        poll.watchers -= 1
        if poll.poller is me:
            poll.poller = None
            poll.wake()
        if poll.watchers == 0:
            self._polls.pop(generation_id, None)

    def _news(self, generation_id: str, me: _Watcher) -> WaitUpdate:
        me.seen, me.last_heard = me.poll.version, self._clock()
        news = self._update(generation_id, me, answer=True)
        me.last_status = news.status
        return news

    def _update(self, generation_id: str, me: _Watcher, *, answer: bool) -> WaitUpdate:
        poll = me.poll
        current = poll.latest
        changed = answer and current is not None and current.status is not me.last_status
        return WaitUpdate(
            generation_id,
            current,
            self._clock() - poll.started,
            poll.expectation.typical,
            changed,
            answer,
            polled=answer and poll.answered_by is me,
            answered_at=poll.answered_at,
        )

    async def _step(self, generation_id: str, me: _Watcher) -> bool:
        """Poll when this watcher is the poller and a look is due (True), else sleep until there is news, a look
        is due or a heartbeat must go out (False)."""
        poll, now = me.poll, self._clock()
        if poll.poller is None:
            poll.poller = me
        heartbeat_due = me.last_heard + self._policy.heartbeat_seconds
        with self._drain.guard():
            if poll.poller is not me:
                with anyio.move_on_after(max(0.0, min(me.deadline, heartbeat_due) - now)):
                    await poll.changed.wait()
            elif now >= poll.next_due:
                await self._poll(generation_id, me)
                return True
            else:
                await self._sleep(max(0.0, min(poll.next_due, me.deadline, heartbeat_due) - now))
        return False

    async def _poll(self, generation_id: str, me: _Watcher) -> None:
        """One status request for a shared poll, bounded by the poller's deadline; transient faults are logged
        and the schedule goes on, never sooner than a Retry-After the API asked for."""
        poll = me.poll
        retry_after = None
        asked = self._clock()
        try:
            current = await self._get(generation_id, max(0.0, me.deadline - asked))
        except _TRANSIENT_DURING_WAIT as exc:
            logger.warning("status of %s unavailable for now (%s); still waiting", printable(generation_id), exc)
            if isinstance(exc, APIStatusError) and exc.retry_after is not None:
                retry_after = min(exc.retry_after, self._retry_policy.max_retry_after)
        else:
            poll.announce(current, me)
        # The schedule counts from when this look was sent (a slow answer must not push every later look back); a
        # Retry-After counts from its answer.
        delay = self._policy.next_delay(asked - poll.started, poll.expectation)
        poll.next_due = max(asked + delay, self._clock() + (retry_after or 0.0))
