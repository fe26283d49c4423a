"""When to look again: a polling schedule built from when a generation is likely to be ready.

Polling every N seconds either wastes the user's rate limit (small N) or notices a finished video late (large N).
We know when videos of each size are usually ready, so we look once early (a failure can come back at once), then
densely while completions are likely, and back off if it runs late. "Usually" is learnt: the provider's speed
changes with load, time of day and model updates, so the expectation comes from the journal's recent ready times
(`learned_expectation`). Before there are enough of them, the documented table is only a guess that may be off by
half or twice, and the schedule hedges across that whole range instead of betting on the table.
"""

from __future__ import annotations

import itertools
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
# With no history the upstream may run anywhere from half to twice the table's times (load, model updates): the
# prior's window spans that range, around the table's own figure.
_PRIOR_EARLY: Final = 0.5
_PRIOR_LATE: Final = 2.0
# The quantiles of the learnt distribution the dense window spans: 5 % of videos finish before it, 10 % after. Not
# symmetric: a video ready before the window waits for it to open, while one ready after it is still looked for
# every second or two (the back-off starts from the dense interval). No wider: at 0.5x the documented times, where
# the provider's loop needs only 3 or 4 looks, a wider window costs more looks than the lag it saves.
EARLY_QUANTILE: Final = 0.05
LATE_QUANTILE: Final = 0.9
# A generation's weight halves every this many newer ones: recent speed counts, older speed fades.
HALF_LIFE_GENERATIONS: Final = 10.0
# The table counts as this many generations, until there are `ENOUGH_HISTORY` real ones: then only they count (a
# table that is wrong must not keep pulling the window towards itself), and their window is polled densely.
PRIOR_WEIGHT: Final = 1.0
ENOUGH_HISTORY: Final = 5
# A size with fewer generations of its own than this borrows from every size: the upstream's load slows them all
# alike, so each recent generation's time, as a multiple of its size's table figure, applies to this size too.
OWN_HISTORY: Final = 10


def expected_generation_seconds(resolution: str, duration: int) -> float:
    """How long a generation of this size usually takes by the documented table, in seconds."""
    return EXPECTED_GENERATION_SECONDS.get((resolution, duration), DEFAULT_EXPECTED_SECONDS)


class ReadyTime(NamedTuple):
    """How long one completed generation took to be ready, as the journal knows it: somewhere between the last look
    that saw it still running and the first that saw it done, both counted from the create's answer."""

    resolution: str
    duration: int
    seconds: float
    """The middle of that span."""
    span: float
    """That span's width in seconds."""
    model: str | None = None
    """The model that made it (None in the journals of versions that knew one model)."""

    @property
    def low(self) -> float:
        """The latest time it was known not to be ready."""
        return self.seconds - self.span / 2

    @property
    def high(self) -> float:
        """The earliest time it was known to be ready."""
        return self.seconds + self.span / 2


@dataclass(frozen=True)
class Expectation:
    """When a generation of one size is likely to be ready, in seconds after its creation: most are ready between
    `early` and `late`, half by `typical`."""

    early: float
    typical: float
    late: float
    settled: bool = True
    """True when the window was learnt from enough generations to poll it densely; False for the table's guess
    (alone or with a few generations), which may be off by half or twice: the schedule then hedges."""

    @classmethod
    def around(cls, typical: float) -> Expectation:
        """The prior for a usual duration: anywhere from half to twice it, most likely about it."""
        return cls(_PRIOR_EARLY * typical, typical, _PRIOR_LATE * typical, settled=False)


Bounds = tuple[float, float]
"""A ready time known only between two looks: (the last that saw it running, the first that saw it done)."""


def learned_expectation(
    ready_times: Sequence[float | Bounds],
    prior: Expectation,
    *,
    half_life: float = HALF_LIFE_GENERATIONS,
    prior_weight: float = PRIOR_WEIGHT,
) -> Expectation:
    """The expectation from recent ready times (newest first), each a time in seconds or the (low, high) bounds it
    is known within, weighted by recency; while there are fewer than `ENOUGH_HISTORY`, the prior counts as a few
    weighted points and the result is not settled.

    Quantiles, not a mean: one outlier moves them by one rank at most. A time known only roughly spreads its weight
    over its bounds (so a batch seen only by sparse looks widens the window rather than collapsing it onto the
    middle of one gap), then moves it towards where more precise times put theirs (so it no longer widens a window
    they have narrowed)."""
    bounds: list[Bounds] = []
    weights: list[float] = []
    for rank, ready in enumerate(ready_times):
        low, high = ready if isinstance(ready, tuple) else (ready, ready)
        if high > 0:
            bounds.append((max(0.0, min(low, high)), high))
            weights.append(0.5 ** (rank / half_life))
    settled = len(bounds) >= ENOUGH_HISTORY
    if not settled:
        for seconds in (prior.early, prior.typical, prior.late):
            bounds.append((seconds, seconds))
            weights.append(prior_weight / 3)
    distribution = _Distribution(bounds, weights)
    return Expectation(
        distribution.quantile(EARLY_QUANTILE),
        distribution.quantile(0.5),
        distribution.quantile(LATE_QUANTILE),
        settled=settled,
    )


class _Distribution:
    """Weighted times, each known exactly or only within bounds: a weight at each exact time and a weight spread
    evenly over each stretch between two consecutive bounds (Turnbull's elementary intervals)."""

    def __init__(self, bounds: Sequence[Bounds], weights: Sequence[float]) -> None:
        self.edges = sorted({edge for pair in bounds for edge in pair})
        at = {edge: index for index, edge in enumerate(self.edges)}
        self.points = [0.0] * len(self.edges)
        spans = [(at[low], at[high], weight) for (low, high), weight in zip(bounds, weights, strict=True) if low < high]
        for (low, high), weight in zip(bounds, weights, strict=True):
            if low == high:
                self.points[at[low]] += weight
        # Where videos are ready as the spans say, each spread evenly over its bounds and counting by its precision
        # (its weight over its width). Each span's weight is then shared out within its bounds in proportion to
        # that: one step of Turnbull's self-consistency algorithm, from a precision-weighted start. A rough time
        # goes where the precise ones put theirs (from an even start it would keep a share where only rough ones
        # are); spans equally rough move only a little towards their overlap (more steps would collapse them onto
        # it, though it is no better known than the rest of their bounds).
        precise = self._evenly([(first, end, weight / self._width(first, end)) for first, end, weight in spans])
        held = list(itertools.accumulate(precise, initial=0.0))
        share = [0.0] * len(self.edges)
        for first, end, weight in spans:
            share[first] += weight / (held[end] - held[first])
            share[end] -= weight / (held[end] - held[first])
        self.stretches = [mass * factor for mass, factor in zip(precise, itertools.accumulate(share), strict=False)]

    def _width(self, first: int, end: int) -> float:
        return self.edges[end] - self.edges[first]

    def _evenly(self, spans: Sequence[tuple[int, int, float]]) -> list[float]:
        """Each span's weight spread evenly over its bounds: the weight in each stretch between two edges."""
        density = [0.0] * len(self.edges)
        for first, end, weight in spans:
            density[first] += weight / self._width(first, end)
            density[end] -= weight / self._width(first, end)
        return [
            rate * self._width(index, index + 1)
            for index, rate in zip(range(len(self.edges) - 1), itertools.accumulate(density), strict=False)
        ]

    def quantile(self, fraction: float) -> float:
        """The time by which `fraction` of the weight is reached (interpolated within a stretch)."""
        target = fraction * (math.fsum(self.points) + math.fsum(self.stretches))
        reached = 0.0
        for index, edge in enumerate(self.edges):
            reached += self.points[index]
            if reached >= target:
                return edge
            if index < len(self.stretches):
                stretch = self.stretches[index]
                if stretch > 0 and reached + stretch >= target:
                    return edge + (target - reached) / stretch * (self.edges[index + 1] - edge)
                reached += stretch
        return self.edges[-1]


def expectation_from_history(
    history: Sequence[ReadyTime],
    resolution: str,
    duration: int,
    *,
    time_scale: float = 1.0,
    model: str | None = None,
) -> Expectation:
    """The expectation for one model and size from recent generations of every model and size (newest first), each
    known between two looks: its own times once it has `OWN_HISTORY` of them, else every generation's time as a
    multiple of its size's table figure (scaled by `time_scale`), applied to this size's (the upstream's load slows
    every model and size alike). `model` None: the size's times, whatever model made them."""
    table = expected_generation_seconds(resolution, duration) * time_scale
    own = [
        ready
        for ready in history
        if (ready.resolution, ready.duration) == (resolution, duration) and model in (None, ready.model or model)
    ]
    if len(own) >= OWN_HISTORY:
        return learned_expectation([(ready.low, ready.high) for ready in own], Expectation.around(table))
    ratios: list[Bounds] = []
    for ready in history:
        size_table = expected_generation_seconds(ready.resolution, ready.duration) * time_scale
        ratios.append((ready.low / size_table, ready.high / size_table))
    learnt = learned_expectation(ratios, Expectation.around(1.0))
    return Expectation(learnt.early * table, learnt.typical * table, learnt.late * table, settled=learnt.settled)


@dataclass(frozen=True)
class PollingPolicy:
    """The schedule for one generation, given its `Expectation`:

    - before `early`: one look at `hedge_fraction` x early (a failure or a fast video is not missed for long), then
      one at `early`, a gap longer than the cap split evenly;
    - from `early` to `late`, in a settled (learnt) window: a look every `dense_seconds` (the noticing lag is about
      half of it);
    - from `early` to `late`, for the table's guess: looks closing in on `typical` (the floor there) and spreading
      out from it, `unsure_slope` seconds more per second away, at most `max_dense_seconds` apart;
    - after `late`: back off linearly up to `max_interval_seconds` (for the table's guess, up to the provider's
      own interval: with the upstream's speed unknown, no gap is ever longer than its loop's).
    `time_scale` shrinks every duration, for the sandbox and benchmarks that run the same schedule faster (learnt
    expectations are measured in that scaled world already).
    """

    floor_seconds: float = 1.0
    max_interval_seconds: float = 15.0
    provider_interval_seconds: float = 10.0
    """The provider's sample code looks every 10 s. Without a settled window no gap is ever longer: whatever the
    upstream's speed, a video is noticed no later than by that loop."""
    max_dense_seconds: float = 5.0
    """Half the provider's interval: where completions are likely, looks come at least twice as often as its."""
    dense_budget: float = 1.5
    """From its start to `typical`, a settled window gets at most this many times the looks the provider's loop makes
    over the whole typical time: of our budget (twice its looks), the rest is for the looks before and after."""
    hedge_fraction: float = 0.5
    backoff_per_second: float = 0.25
    unsure_slope: float = 0.7
    """Without a settled window, each gap is the floor plus this many seconds per second away from `typical`: below
    1, so the looks close in on it rather than step over it (a video ready then is noticed within the floor)."""
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
        """The interval between looks in a settled window: the floor, unless the window opens so far before its
        middle (a distribution learnt from rough times) that this would cost more than `dense_budget` allows."""
        provider = self.provider_interval_seconds * self.time_scale
        opening = (expectation.typical - expectation.early) / max(expectation.typical, self._floor)
        return min(self.max_dense_seconds * self.time_scale, max(self._floor, opening * provider / self.dense_budget))

    def next_delay(self, elapsed: float, expectation: Expectation) -> float:
        """Seconds to sleep before the next status request, `elapsed` seconds after the generation started."""
        # Without a settled window, never a gap longer than the provider's own: the table may be off either way.
        cap = (self.max_interval_seconds if expectation.settled else self.provider_interval_seconds) * self.time_scale
        if elapsed < expectation.early:
            # Up to the early look, then up to the window; a gap longer than the cap is split evenly.
            hedge = self.hedge_fraction * expectation.early
            gap = (hedge if elapsed < hedge else expectation.early) - elapsed
            return max(self._floor, gap / math.ceil(gap / cap))
        if expectation.settled:
            inside = self.dense_seconds(expectation)
        else:
            away = abs(min(elapsed, expectation.late) - expectation.typical)
            inside = min(self.max_dense_seconds * self.time_scale, self._floor + self.unsure_slope * away)
        if elapsed < expectation.late:
            return inside
        return min(cap, inside + (elapsed - expectation.late) * self.backoff_per_second)

    @property
    def _floor(self) -> float:
        return self.floor_seconds * self.time_scale
