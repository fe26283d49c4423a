"""Retry policy as pure functions, so every rule is one table-tested line.

The rules (README, "Retry and safety guarantees"):
- status GETs and downloads are idempotent: retried on connection errors, timeouts, 429 and 5xx;
- a create POST is retried only when it provably never reached the API (no connection was made) or the API
  refused it outright with 429 — never after a timeout, a reset or a 5xx, where it may have been accepted;
- 4xx other than 429 are never retried: sending the same thing again gets the same answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx2

from pixverse_mcp.errors import RateLimitError, UpstreamServerError


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts and total time bound every request; delays grow exponentially with full jitter."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total_seconds: float = 30.0
    max_retry_after: float = 30.0
    """A Retry-After longer than this is capped: the server's hint, not a licence to hang an agent."""


# Raised by httpx2 before a byte of the request was sent: nothing can have been accepted upstream. (httpx2's
# LocalProtocolError, a request it refused to build, is never sent either, but retrying it cannot help.)
NEVER_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
# Transport failures after the request may have been sent (or where we cannot tell).
_TRANSPORT_FAULTS = (httpx2.TransportError,)


def should_retry(error: BaseException, *, idempotent: bool) -> bool:
    """Whether `error` is worth another attempt for a request of this kind."""
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, NEVER_SENT):
        return True
    if not idempotent:
        return False
    return isinstance(error, (UpstreamServerError, *_TRANSPORT_FAULTS))


def retry_delay(attempt: int, policy: RetryPolicy, *, retry_after: float | None = None, rng: random.Random) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempts count from 1).

    A server's Retry-After wins (capped); otherwise "full jitter": uniform in [0, min(max_delay, base * 2**n)],
    which spreads a crowd of clients out instead of having them retry in lockstep.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds, from either of its two forms (delta-seconds or an HTTP date); None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None  # rejects negatives and NaN
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)
