"""Ending every wait at once, for a graceful shutdown: each interrupted call still answers with what it has.

A wait is a stream of updates (`PixVerseClient.watch`); a cancel scope must not stay open across the stream's
yields, so each await that may last (a sleep, a status request, a read of the journal, a download) runs inside its
own short `guard()`, and `begin()` cancels them all. The stream then sees `stopping` and ends normally.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class Drain:
    """The shutdown switch shared by the client, the poller and the downloads of one process."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self.stopping = False

    def begin(self) -> None:
        """End every guarded await now; guards entered later end at once."""
        self.stopping = True
        for scope in self._scopes:
            scope.cancel()

    @contextmanager
    def guard(self) -> Iterator[anyio.CancelScope]:
        """A scope around one await that `begin` ends (its `cancelled_caught` then says so)."""
        scope = anyio.CancelScope()
        if self.stopping:
            scope.cancel()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)
