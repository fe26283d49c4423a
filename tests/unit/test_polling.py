"""The polling schedule: sparse early, dense around the expected finish, backing off when late; simulated time only."""

from __future__ import annotations

import math

import pytest

from pixverse_mcp.polling import (
    DEFAULT_EXPECTED_SECONDS,
    EXPECTED_GENERATION_SECONDS,
    PollingPolicy,
    expected_generation_seconds,
)

POLICY = PollingPolicy()
EXPECTED = 35.0  # 720p, 5 s
DENSE_START = POLICY.dense_from * EXPECTED  # 29.75 s
DENSE_END = POLICY.dense_until * EXPECTED  # 45.5 s
# The provider's sample code polls every 10 s: the baseline to beat (upstream.md, "Timing").
BASELINE_INTERVAL = 10.0
# Float sums of many delays drift by far less than this.
EPSILON = 1e-9


# --- next_delay phases ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "expected_delay"),
    [
        (0.0, 0.3 * EXPECTED),  # at most sparse_fraction x expected apart
        (10.5, 0.3 * EXPECTED),
        (21.0, DENSE_START - 21.0),  # the last sparse look lands exactly on the dense window
        (25.0, DENSE_START - 25.0),
    ],
)
def test_before_the_dense_window_looks_are_sparse(elapsed: float, expected_delay: float) -> None:
    assert POLICY.next_delay(elapsed, EXPECTED) == pytest.approx(expected_delay)


def test_sparse_looks_never_overshoot_the_dense_window() -> None:
    for tenth in range(int(DENSE_START * 10)):
        elapsed = tenth / 10
        assert elapsed + POLICY.next_delay(elapsed, EXPECTED) <= max(DENSE_START, elapsed + POLICY.floor_seconds)


def test_just_before_the_dense_window_the_delay_is_the_floor_not_less() -> None:
    assert POLICY.next_delay(DENSE_START - 0.01, EXPECTED) == POLICY.floor_seconds


@pytest.mark.parametrize("elapsed", [DENSE_START, EXPECTED - 1, EXPECTED, EXPECTED + 5, DENSE_END - 0.01])
def test_in_the_dense_window_the_delay_is_the_floor(elapsed: float) -> None:
    assert POLICY.next_delay(elapsed, EXPECTED) == POLICY.floor_seconds


@pytest.mark.parametrize(
    ("late_by", "expected_delay"),
    [(0.0, 1.0), (4.0, 2.0), (20.0, 6.0), (56.0, 15.0)],
)
def test_after_the_dense_window_the_delay_backs_off_linearly(late_by: float, expected_delay: float) -> None:
    assert POLICY.next_delay(DENSE_END + late_by, EXPECTED) == pytest.approx(expected_delay)


@pytest.mark.parametrize("elapsed", [DENSE_END + 100, DENSE_END + 1_000, 1e6])
def test_backoff_is_capped_at_the_max_interval(elapsed: float) -> None:
    assert POLICY.next_delay(elapsed, EXPECTED) == POLICY.max_interval_seconds


def test_backoff_grows_monotonically_after_the_dense_window() -> None:
    delays = [POLICY.next_delay(DENSE_END + step, EXPECTED) for step in range(0, 200)]

    assert delays == sorted(delays)


@pytest.mark.parametrize("time_scale", [1.0, 0.5, 0.04])
@pytest.mark.parametrize("expected_seconds", [*EXPECTED_GENERATION_SECONDS.values(), 1.0, 600.0])
def test_delay_is_never_below_the_scaled_floor(time_scale: float, expected_seconds: float) -> None:
    policy = PollingPolicy(time_scale=time_scale)
    expected = expected_seconds * time_scale
    floor = policy.floor_seconds * time_scale

    for step in range(0, 3000):
        elapsed = step * expected / 1000
        assert policy.next_delay(elapsed, expected) >= floor - EPSILON


def test_time_scale_scales_the_floor() -> None:
    policy = PollingPolicy(time_scale=0.1)
    expected = EXPECTED * 0.1

    assert policy.next_delay(expected, expected) == pytest.approx(0.1 * policy.floor_seconds)


def test_time_scale_scales_the_cap() -> None:
    policy = PollingPolicy(time_scale=0.1)
    expected = EXPECTED * 0.1

    assert policy.next_delay(expected * 100, expected) == pytest.approx(0.1 * policy.max_interval_seconds)


# --- expected generation time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "duration", "seconds"),
    [
        ("360p", 5, 25.0),
        ("540p", 5, 30.0),
        ("720p", 5, 35.0),
        ("1080p", 5, 75.0),
        ("360p", 8, 40.0),
        ("540p", 8, 48.0),
        ("720p", 8, 56.0),
    ],
)
def test_expected_seconds_follow_the_table(resolution: str, duration: int, seconds: float) -> None:
    assert expected_generation_seconds(resolution, duration) == seconds
    assert PollingPolicy().expected_seconds(resolution, duration) == seconds
    assert PollingPolicy(time_scale=0.04).expected_seconds(resolution, duration) == pytest.approx(seconds * 0.04)


def test_provider_figures_are_the_table_anchors() -> None:
    # 30-40 s for 5 s at 720p, about 75 s for 1080p (the model page's own figures).
    assert 30.0 <= EXPECTED_GENERATION_SECONDS[("720p", 5)] <= 40.0
    assert EXPECTED_GENERATION_SECONDS[("1080p", 5)] == 75.0


@pytest.mark.parametrize(("resolution", "duration"), [(None, None), ("720p", None), (None, 5)])
def test_unknown_size_uses_the_default_expected_seconds(resolution: str | None, duration: int | None) -> None:
    assert PollingPolicy().expected_seconds(resolution, duration) == DEFAULT_EXPECTED_SECONDS
    assert PollingPolicy(time_scale=0.5).expected_seconds(resolution, duration) == DEFAULT_EXPECTED_SECONDS * 0.5


def test_size_missing_from_the_table_uses_the_default() -> None:
    assert expected_generation_seconds("1080p", 8) == DEFAULT_EXPECTED_SECONDS
    assert expected_generation_seconds("4k", 5) == DEFAULT_EXPECTED_SECONDS


# --- simulation ---------------------------------------------------------------------------------------------------


def _simulate(next_delay: PollingPolicy | float, expected: float, finishes_at: float) -> tuple[int, float]:
    """Poll from t=0 until a look at or after `finishes_at`; return (requests, lag between finishing and noticing)."""
    now = 0.0
    requests = 0
    while True:
        requests += 1
        if now >= finishes_at:
            return requests, now - finishes_at
        if isinstance(next_delay, PollingPolicy):
            now += next_delay.next_delay(now, expected)
        else:
            now += next_delay
        assert requests < 10_000, "the schedule never reached the finish"


@pytest.mark.parametrize("time_scale", [1.0, 0.04])
@pytest.mark.parametrize(("resolution", "duration"), list(EXPECTED_GENERATION_SECONDS))
def test_generation_finishing_on_time_is_noticed_within_the_floor(
    resolution: str, duration: int, time_scale: float
) -> None:
    policy = PollingPolicy(time_scale=time_scale)
    expected = policy.expected_seconds(resolution, duration)

    _, lag = _simulate(policy, expected, finishes_at=expected)

    assert lag <= policy.floor_seconds * time_scale + EPSILON


@pytest.mark.parametrize("time_scale", [1.0, 0.04])
def test_720p_5s_on_time_uses_at_most_twice_the_requests_of_a_fixed_10s_interval(time_scale: float) -> None:
    policy = PollingPolicy(time_scale=time_scale)
    expected = policy.expected_seconds("720p", 5)

    requests, lag = _simulate(policy, expected, finishes_at=expected)
    baseline_requests, baseline_lag = _simulate(BASELINE_INTERVAL * time_scale, expected, finishes_at=expected)

    assert baseline_requests == math.floor(35 / 10) + 2  # looks at 0, 10, 20, 30 and notices at 40
    assert requests <= 2 * baseline_requests
    assert lag < baseline_lag


@pytest.mark.parametrize("finishes_at", [40.0, 60.0, 120.0, 300.0])
def test_late_generation_lag_is_bounded_by_the_max_interval(finishes_at: float) -> None:
    _, lag = _simulate(POLICY, EXPECTED, finishes_at=finishes_at)

    assert lag <= POLICY.max_interval_seconds
