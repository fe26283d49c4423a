"""When to look again: a polling schedule built from when a generation is likely to be ready.

Polling every N seconds either wastes the user's rate limit (small N) or notices a finished video late (large N).
We know when videos of each size are usually ready, so we look once early (a failure can come back at once), then
densely while completions are likely, and back off if it runs late. "Usually" is learnt: the provider's speed
changes with load, time of day and model updates, so the expectation comes from the journal's recent ready times
(`learned_expectation`), starting from the documented table when there is no history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

# The provider's own figures are ~30-40 s for 5 s at 720p and ~75 s for 1080p (which only exists at 5 s).
# The others are our estimates: time grows with pixels and with clip length. The prior, before any history.
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
# With no history, completions are expected from 80 % to 130 % of the table's figure (its "30-40 s" spread).
_PRIOR_EARLY: Final = 0.8
_PRIOR_LATE: Final = 1.3
# The quantiles of the learnt distribution the dense window spans: 10 % of videos finish before it, 10 % after.
# (No narrower: the newest generation weighs about 7 % of a long history, and one outlier must not move a bound. No
# wider either: at 0.5x the documented times, where the provider's loop needs only 3 or 4 looks, a wider window
# costs more looks than the lag it saves.)
EARLY_QUANTILE: Final = 0.1
LATE_QUANTILE: Final = 0.9
# A generation's weight halves every this many newer ones: recent speed counts, older speed fades.
HALF_LIFE_GENERATIONS: Final = 10.0
# The table counts as this many generations, until there are `ENOUGH_HISTORY` real ones: then only they count (a
# table that is wrong must not keep pulling the window towards itself).
PRIOR_WEIGHT: Final = 1.0
ENOUGH_HISTORY: Final = 5
# A size with fewer generations of its own than this borrows from every size: the upstream's load slows them all
# alike, so each recent generation's time, as a multiple of its size's table figure, applies to this size too.
OWN_HISTORY: Final = 10
# A ready time is known to within the span between the last look that saw the video running and the first that saw
# it done. A span up to this fraction of the time itself counts in full; a wider one (the prior's sparse looks, a
# status check long after) counts in proportion: its middle may be far from the truth, and would widen the window.
PRECISE_SPAN_FRACTION: Final = 0.25


def expected_generation_seconds(resolution: str, duration: int) -> float:
    """How long a generation of this size usually takes by the documented table, in seconds."""
    return EXPECTED_GENERATION_SECONDS.get((resolution, duration), DEFAULT_EXPECTED_SECONDS)


class ReadyTime(NamedTuple):
    """How long one completed generation took to be ready, as the journal knows it."""

    resolution: str
    duration: int
    seconds: float
    """The middle of the span between the last look that saw it still running and the first that saw it done."""
    span: float
    """That span's width in seconds: how precisely `seconds` is known."""

    @property
    def precision(self) -> float:
        """How much this time counts (0-1): in full when its span is narrow, less the wider it is."""
        full = PRECISE_SPAN_FRACTION * self.seconds
        return 1.0 if self.span <= full else full / self.span


@dataclass(frozen=True)
class Expectation:
    """When a generation of one size is likely to be ready, in seconds after its creation: most are ready between
    `early` and `late`, half by `typical`."""

    early: float
    typical: float
    late: float

    @classmethod
    def around(cls, typical: float) -> Expectation:
        """The prior for a usual duration: the table's spread around it."""
        return cls(_PRIOR_EARLY * typical, typical, _PRIOR_LATE * typical)


def learned_expectation(
    ready_times: Sequence[float],
    prior: Expectation,
    *,
    precision: Sequence[float] | None = None,
    half_life: float = HALF_LIFE_GENERATIONS,
    prior_weight: float = PRIOR_WEIGHT,
) -> Expectation:
    """The expectation from recent ready times (seconds, newest first), each weighted by its recency and its
    `precision` (0-1, default 1), with the prior as a few weighted points while history is short. Quantiles, not a
    mean: one outlier moves them by one rank at most."""
    precision = precision or [1.0] * len(ready_times)
    points = [
        (seconds, weight * 0.5 ** (rank / half_life))
        for rank, (seconds, weight) in enumerate(zip(ready_times, precision, strict=True))
        if seconds > 0
    ]
    if len(points) < ENOUGH_HISTORY:
        points += [(seconds, prior_weight / 3) for seconds in (prior.early, prior.typical, prior.late)]
    points.sort()
    total = math.fsum(weight for _, weight in points)

    def quantile(fraction: float) -> float:
        reached = 0.0
        for seconds, weight in points:
            reached += weight
            if reached >= fraction * total:
                return seconds
        return points[-1][0]

    return Expectation(quantile(EARLY_QUANTILE), quantile(0.5), quantile(LATE_QUANTILE))


def expectation_from_history(
    history: Sequence[ReadyTime], resolution: str, duration: int, *, time_scale: float = 1.0
) -> Expectation:
    """The expectation for one size from recent generations of every size (newest first), each counted by its
    `precision`: its own times once it has `OWN_HISTORY` of them, else every size's times as multiples of their
    table figures (scaled by `time_scale`), applied to this size's."""
    table = expected_generation_seconds(resolution, duration) * time_scale
    prior = Expectation.around(table)
    own = [ready for ready in history if (ready.resolution, ready.duration) == (resolution, duration)]
    if len(own) >= OWN_HISTORY:
        return learned_expectation([ready.seconds for ready in own], prior, precision=[r.precision for r in own])
    ratios = [ready.seconds / (expected_generation_seconds(*ready[:2]) * time_scale) for ready in history]
    learnt = learned_expectation(ratios, Expectation.around(1.0), precision=[ready.precision for ready in history])
    return Expectation(learnt.early * table, learnt.typical * table, learnt.late * table)


@dataclass(frozen=True)
class PollingPolicy:
    """The schedule for one generation, given its `Expectation`:

    - one early look at `hedge_fraction` x early (a failure or a fast video is not missed for long);
    - from `early` to `late`: a look every `dense` seconds, where `dense` spreads `dense_looks` looks over that
      window, but never less than `floor_seconds` nor more than `max_dense_seconds` (the noticing lag is about
      half of it);
    - after `late`: back off linearly up to `max_interval_seconds`.
    `time_scale` shrinks every duration, for the sandbox and benchmarks that run the same schedule faster (learnt
    expectations are measured in that scaled world already).
    """

    floor_seconds: float = 1.0
    max_interval_seconds: float = 15.0
    max_dense_seconds: float = 1.0
    dense_looks: float = 4.0
    hedge_fraction: float = 0.5
    backoff_per_second: float = 0.25
    heartbeat_seconds: float = 5.0
    """How often a wait reports that it is still alive, even between polls (hosts drop silent calls)."""
    time_scale: float = 1.0

    def expectation(self, resolution: str | None = None, duration: int | None = None) -> Expectation:
        """The prior for this size (the default when unknown), scaled by `time_scale`."""
        typical = DEFAULT_EXPECTED_SECONDS
        if resolution is not None and duration is not None:
            typical = expected_generation_seconds(resolution, duration)
        return Expectation.around(typical * self.time_scale)

    def expected_seconds(self, resolution: str | None = None, duration: int | None = None) -> float:
        """The usual generation time for this size by the table, scaled by `time_scale`."""
        return self.expectation(resolution, duration).typical

    def dense_seconds(self, expectation: Expectation) -> float:
        """The interval between looks while completions are likely."""
        spread = (expectation.late - expectation.early) / self.dense_looks
        return min(max(self.floor_seconds, self.max_dense_seconds) * self.time_scale, max(self._floor, spread))

    def next_delay(self, elapsed: float, expectation: Expectation) -> float:
        """Seconds to sleep before the next status request, `elapsed` seconds after the generation started."""
        cap = self.max_interval_seconds * self.time_scale
        hedge = self.hedge_fraction * expectation.early
        if elapsed < expectation.early:
            # Up to the early look, then up to the window; a gap longer than the cap is split evenly.
            gap = (hedge if elapsed < hedge else expectation.early) - elapsed
            return max(self._floor, gap / math.ceil(gap / cap))
        dense = self.dense_seconds(expectation)
        if elapsed < expectation.late:
            return dense
        return min(cap, dense + (elapsed - expectation.late) * self.backoff_per_second)

    @property
    def _floor(self) -> float:
        return self.floor_seconds * self.time_scale
