"""When to look again: a polling schedule built from how long a generation is expected to take.

Polling every N seconds either wastes the user's rate limit (small N) or notices a finished video late (large N).
We know roughly when a video will be ready, so we look rarely at first, often around the expected finish, and
back off again if it runs late.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The provider's own figures are ~30-40 s for 5 s at 720p and ~75 s for 1080p (which only exists at 5 s).
# The others are our estimates: time grows with pixels and with clip length. One table, one place to tune.
EXPECTED_GENERATION_SECONDS: Final[dict[tuple[str, int], float]] = {
    ("360p", 5): 25.0,
    ("540p", 5): 30.0,
    ("720p", 5): 35.0,
    ("1080p", 5): 75.0,
    ("360p", 8): 40.0,
    ("540p", 8): 48.0,
    ("720p", 8): 56.0,
}
# Used when we do not know what was asked for (a status wait on an id created elsewhere).
DEFAULT_EXPECTED_SECONDS: Final = 35.0


def expected_generation_seconds(resolution: str, duration: int) -> float:
    """How long a generation of this size usually takes, in seconds."""
    return EXPECTED_GENERATION_SECONDS.get((resolution, duration), DEFAULT_EXPECTED_SECONDS)


@dataclass(frozen=True)
class PollingPolicy:
    """The schedule, as fractions of the expected generation time (so one policy serves every size).

    - before `dense_from` x expected: a few sparse looks, at most `sparse_fraction` x expected apart;
    - from there to `dense_until` x expected: every `floor_seconds`;
    - after that: back off linearly up to `max_interval_seconds`.
    `time_scale` shrinks every duration, for the sandbox and benchmarks that run the same schedule faster.
    """

    floor_seconds: float = 1.0
    max_interval_seconds: float = 15.0
    sparse_fraction: float = 0.3
    dense_from: float = 0.85
    dense_until: float = 1.3
    backoff_per_second: float = 0.25
    heartbeat_seconds: float = 5.0
    """How often a wait reports that it is still alive, even between polls (hosts drop silent calls)."""
    time_scale: float = 1.0

    def expected_seconds(self, resolution: str | None = None, duration: int | None = None) -> float:
        """The expected generation time for this size (the default when unknown), scaled by `time_scale`."""
        if resolution is None or duration is None:
            return DEFAULT_EXPECTED_SECONDS * self.time_scale
        return expected_generation_seconds(resolution, duration) * self.time_scale

    def next_delay(self, elapsed: float, expected: float) -> float:
        """Seconds to sleep before the next status request, `elapsed` seconds after the generation started."""
        floor = self.floor_seconds * self.time_scale
        dense_start = self.dense_from * expected
        dense_end = self.dense_until * expected
        if elapsed < dense_start:
            return max(floor, min(dense_start - elapsed, self.sparse_fraction * expected))
        if elapsed < dense_end:
            return floor
        late = elapsed - dense_end
        return min(self.max_interval_seconds * self.time_scale, floor + late * self.backoff_per_second)
