"""The retry policy as tables: what is retried, how long to wait, and how Retry-After is read."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest

from pixverse_mcp._retry import RetryPolicy, parse_retry_after, retry_delay, should_retry
from pixverse_mcp.errors import (
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    UpstreamServerError,
)

_REQUEST = httpx2.Request("POST", "https://api.aimlapi.com/v2/video/generations")

# Failures where httpx never sent a byte of the request: safe to re-send even a create.
NEVER_SENT = [
    httpx2.ConnectError("connection refused", request=_REQUEST),
    httpx2.ConnectTimeout("connect timed out", request=_REQUEST),
    httpx2.PoolTimeout("no pool slot", request=_REQUEST),
]
# Failures after the request may have reached the API: a create may have been accepted.
MAYBE_SENT = [
    httpx2.ReadTimeout("read timed out", request=_REQUEST),
    httpx2.WriteTimeout("write timed out", request=_REQUEST),
    httpx2.RemoteProtocolError("server disconnected", request=_REQUEST),
    httpx2.ReadError("connection reset", request=_REQUEST),
]
NEVER_RETRIED = [
    BadRequestError("bad", status_code=400),
    BadRequestError("bad", status_code=422),
    AuthenticationError("no key", status_code=401),
    InsufficientCreditsError("no credits", status_code=403),
    NotFoundError("unknown id", status_code=404),
]


def _name(error: BaseException) -> str:
    return f"{type(error).__name__}-{getattr(error, 'status_code', '')}"


@pytest.mark.parametrize("idempotent", [True, False])
@pytest.mark.parametrize("error", NEVER_SENT, ids=_name)
def test_failure_before_anything_was_sent_is_retried_even_for_create(error: Exception, idempotent: bool) -> None:
    assert should_retry(error, idempotent=idempotent) is True


@pytest.mark.parametrize("error", MAYBE_SENT, ids=_name)
def test_failure_after_the_request_may_have_been_sent_is_not_retried_for_create(error: Exception) -> None:
    assert should_retry(error, idempotent=False) is False


@pytest.mark.parametrize("error", MAYBE_SENT, ids=_name)
def test_failure_after_the_request_may_have_been_sent_is_retried_for_get(error: Exception) -> None:
    assert should_retry(error, idempotent=True) is True


@pytest.mark.parametrize("idempotent", [True, False])
@pytest.mark.parametrize("retry_after", [None, 3.0])
def test_rate_limit_is_always_retried(idempotent: bool, retry_after: float | None) -> None:
    error = RateLimitError("slow down", status_code=429, retry_after=retry_after)

    assert should_retry(error, idempotent=idempotent) is True


@pytest.mark.parametrize(
    ("status_code", "idempotent", "expected"),
    [(500, True, True), (502, True, True), (503, True, True), (500, False, False), (502, False, False)],
)
def test_upstream_server_error_is_retried_only_when_idempotent(
    status_code: int, idempotent: bool, expected: bool
) -> None:
    error = UpstreamServerError("trouble", status_code=status_code)

    assert should_retry(error, idempotent=idempotent) is expected


@pytest.mark.parametrize("idempotent", [True, False])
@pytest.mark.parametrize("error", NEVER_RETRIED, ids=_name)
def test_client_errors_other_than_429_are_never_retried(error: Exception, idempotent: bool) -> None:
    assert should_retry(error, idempotent=idempotent) is False


@pytest.mark.parametrize("idempotent", [True, False])
def test_errors_outside_the_tree_are_never_retried(idempotent: bool) -> None:
    assert should_retry(ValueError("bug"), idempotent=idempotent) is False


# --- retry_delay --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, 0.0, 0.0), (1, 2.5, 2.5), (3, 7.0, 7.0), (10, 1.0, 1.0), (1, 30.0, 30.0), (1, 120.0, 30.0), (1, -5.0, 0.0)],
)
def test_retry_after_wins_over_backoff_and_is_capped(attempt: int, retry_after: float, expected: float) -> None:
    delay = retry_delay(attempt, RetryPolicy(), retry_after=retry_after, rng=random.Random(0))

    assert delay == expected


def test_retry_after_cap_comes_from_the_policy() -> None:
    policy = RetryPolicy(max_retry_after=10.0)

    assert retry_delay(1, policy, retry_after=3600.0, rng=random.Random(0)) == 10.0


@pytest.mark.parametrize("attempt", range(1, 9))
def test_full_jitter_stays_within_zero_and_the_capped_exponential(attempt: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    rng = random.Random(1234)
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))

    delays = [retry_delay(attempt, policy, rng=rng) for _ in range(500)]

    assert all(0.0 <= delay <= ceiling for delay in delays)
    # Full jitter spreads over the whole range rather than sitting near the ceiling.
    assert min(delays) < 0.1 * ceiling
    assert max(delays) > 0.9 * ceiling


def test_jitter_is_reproducible_with_a_seeded_random() -> None:
    policy = RetryPolicy()

    first = [retry_delay(n, policy, rng=random.Random(7)) for n in range(1, 6)]
    second = [retry_delay(n, policy, rng=random.Random(7)) for n in range(1, 6)]

    assert first == second


# --- parse_retry_after --------------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("120", 120.0),
        ("2.5", 2.5),
        ("  3  ", 3.0),
        ("-1", None),
        ("-0.5", None),
        ("NaN", None),
        ("nan", None),
        ("soon", None),
        ("5 seconds", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_retry_after_seconds_are_read_and_nonsense_is_none(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_http_date_in_the_future_is_the_seconds_until_then() -> None:
    header = format_datetime(NOW + timedelta(seconds=30), usegmt=True)

    assert parse_retry_after(header, now=NOW) == 30.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)

    assert parse_retry_after(header, now=NOW) == 0.0


def test_retry_after_literal_http_date_is_read() -> None:
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:00 GMT", now=NOW) == 60.0


def test_retry_after_parsed_value_is_never_negative_or_nan() -> None:
    for value in ("-3", "nan", "Thu, 01 Jan 2015 00:00:00 GMT", "1.5"):
        seconds = parse_retry_after(value, now=NOW)
        assert seconds is None or (seconds >= 0 and not math.isnan(seconds))
