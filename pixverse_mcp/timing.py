"""When a generation is likely to be ready, learnt from the journal that every process and replica writes.

The history is read at most every `REFRESH_SECONDS` (scaled with the polling schedule, for the sandbox), so a
thousand waits are not a thousand queries; `forget` makes the next read fresh (after a completion this process
journaled). A completion journaled by another process or replica is learnt at the next refresh, at most
`REFRESH_SECONDS` later: chosen over a cross-process change marker because an expectation only shapes when we poll,
never what is charged or answered, and the read itself is one index walk of the newest completions
(`generations_by_completion`), flat from 1k to 1M videos (benchmark P6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import anyio

from pixverse_mcp.models import request_model, request_size
from pixverse_mcp.polling import Expectation, PollingPolicy, ReadyTime, expectation_from_history
from pixverse_mcp.storage import Storage, StorageError

# Expectations are learnt from this many of the newest ready times (all sizes), re-read at most this often.
LEARN_FROM_GENERATIONS: Final = 200
REFRESH_SECONDS: Final = 10.0


class Expectations:
    """The learnt expectation for each size, from one cached read of the journal's recent ready times."""

    def __init__(self, storage: Storage, policy: PollingPolicy) -> None:
        self._storage = storage
        self._policy = policy
        self._history: tuple[float, list[ReadyTime]] | None = None

    async def of(self, request: Mapping[str, Any] | None) -> Expectation:
        """When a generation of this request's size is likely to be ready (the documented table while there is no
        history, or when the journal cannot be read)."""
        resolution, duration = request_size(request)
        now = anyio.current_time()
        if self._history is None or now - self._history[0] >= REFRESH_SECONDS * self._policy.time_scale:
            try:
                history = await self._storage.ready_times(limit=LEARN_FROM_GENERATIONS)
            except StorageError:
                history = []
            self._history = (now, history)
        return expectation_from_history(
            self._history[1],
            resolution,
            duration,
            time_scale=self._policy.time_scale,
            model=request_model(request) if request else None,
        )

    def forget(self) -> None:
        """Read the history again next time."""
        self._history = None
