"""Answered creates the journal could not take (the database stopped, the journal file locked or damaged): kept in
memory and in a local file until they are written, so a paid id is never lost whatever storage does.

The file (`spool.jsonl` in the state directory) holds one JSON line per answered create; a process that starts
finds what an earlier one could not write, and `flush` writes it all as soon as storage answers again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread

from pixverse_mcp.models import Generation
from pixverse_mcp.storage import AnsweredCreate, Storage, StorageError

logger = logging.getLogger(__name__)

# While something waits in the spool, storage is tried this often.
FLUSH_SECONDS: Final = 2.0


class Spool:
    """Answered creates waiting for the journal, in memory and in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._waiting: dict[str, AnsweredCreate] = {}
        self._lock = anyio.Lock()
        self._loaded = False

    def __len__(self) -> int:
        return len(self._waiting)

    async def keep(self, answered: AnsweredCreate) -> str:
        """Keep an answered create until the journal takes it; returns what to tell the user about where it is."""
        async with self._lock:
            self._waiting[answered.intent_id] = answered
            try:
                await anyio.to_thread.run_sync(self._append, answered)
            except OSError as exc:
                return (
                    f"it is kept in this process's memory (the spool file {self.path} could not be written: "
                    f"{exc.strerror or exc}) and goes into the journal as soon as it can be written"
                )
        return f"it is kept in {self.path} and goes into the journal as soon as it can be written"

    async def flush(self, storage: Storage) -> int:
        """Write what waits (and what an earlier process left in the file) to storage; returns how many went in.
        Stops at the first storage failure (the rest waits for the next try)."""
        async with self._lock:
            if not self._loaded:
                self._loaded = True
                for answered in await anyio.to_thread.run_sync(self._read):
                    self._waiting.setdefault(answered.intent_id, answered)
            written = 0
            for intent_id, answered in list(self._waiting.items()):
                try:
                    await storage.complete_create(answered)
                except StorageError as exc:
                    logger.warning("%d answered create(s) still wait for the journal: %s", len(self._waiting), exc)
                    break
                del self._waiting[intent_id]
                written += 1
                logger.info("generation %s written to the journal from the spool", answered.generation.id[:80])
            if written:
                await anyio.to_thread.run_sync(self._rewrite)
            return written

    async def run(self, storage: Storage) -> None:
        """Flush now, then whenever something waits, until cancelled."""
        while True:
            await self.flush(storage)
            await anyio.sleep(FLUSH_SECONDS)

    def _append(self, answered: AnsweredCreate) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(_line(answered)) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def _rewrite(self) -> None:
        if not self._waiting:
            self.path.unlink(missing_ok=True)
            return
        partial = self.path.with_suffix(".partial")
        partial.write_text("".join(json.dumps(_line(answered)) + "\n" for answered in self._waiting.values()))
        os.replace(partial, self.path)

    def _read(self) -> list[AnsweredCreate]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            logger.error("the spool file %s cannot be read: %s", self.path, exc)
            return []
        kept = []
        for line in lines:
            try:
                kept.append(_answered(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                logger.error("ignoring an unreadable line of the spool file %s", self.path)
        return kept


def _line(answered: AnsweredCreate) -> dict[str, Any]:
    return {
        "intent_id": answered.intent_id,
        "generation": answered.generation.model_dump(mode="json"),
        "request": answered.request,
        "key": answered.key,
        "created_at": answered.created_at,
        "cost_usd": answered.cost_usd,
        "cost_estimated": answered.cost_estimated,
    }


def _answered(line: dict[str, Any]) -> AnsweredCreate:
    return AnsweredCreate(
        intent_id=str(line["intent_id"]),
        generation=Generation.model_validate(line["generation"]),
        request=dict(line["request"]),
        key=str(line["key"]),
        created_at=float(line["created_at"]),
        cost_usd=None if line["cost_usd"] is None else float(line["cost_usd"]),
        cost_estimated=bool(line["cost_estimated"]),
    )
