"""P6: a journal that scales. What a create, a status look, a listing and a cold start cost on a journal of 1M
generations (SQLite; 100k on PostgreSQL), against the same on a journal of 1k, in the same run.

    .venv/bin/python benchmarks/run.py P6          # a few minutes; the journals are built once into BUILD_DIR

The journals are made through the project's own migrations (a storage opened on an empty file or database), then
filled in one transaction with rows shaped like the ones the server writes (one generation, its three status
changes and its create intent per video; one in 20 failed; a handful still generating, for the rare-status
listing). Each measurement runs on a fresh copy of the cached journal, opened with this code (so a journal built
by older code is upgraded first: that one-time migration is reported on its own row).

Measured through the `Storage` interface, the statements the tools run (the HTTP round trip to the provider is P2's):
- create: `last_cost` (the estimate), `spent_since` (the cap's advisory check), `claim_create` with a cap and
  re-attach, `complete_create`, `ready_times` (the learnt expectation's read, uncached);
- status: `get` and `record_status` of an old generation (get_video_status on an id from months ago);
- list: `recent` and `pending_creates` (list_videos), and `recent` of a rare status;
- cold start: a new storage on the file (connection, migration check) to its first `recent` answer.
Each figure is a median; the rows are ratios against the 1k journal (target <= 1.5x). Then, on the largest SQLite
journal, retention catching up on its oldest tenth: the longest of its transactions (what any other writer may wait).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pixverse_mcp.models import Generation, GenerationStatus  # noqa: E402
from pixverse_mcp.storage import AnsweredCreate, Budget, CreateClaim, Proceed, Storage, utc_midnight  # noqa: E402
from pixverse_mcp.storage.sqlite import SqliteStorage  # noqa: E402

Row = tuple[str, str, str, str, str]
BUILD_DIR = Path(tempfile.gettempdir()) / "pixverse-journals"
SQLITE_SIZES = (1_000, 100_000, 1_000_000)
POSTGRES_SIZES = (1_000, 100_000)
TARGET = "<= 1.5x"
# One video a minute: the newest 1,000 (the whole small journal) all fall within the last day.
SPACING_SECONDS = 60.0
MODELS = ("pixverse/v5/text-to-video", "pixverse/v5/image-to-video", "pixverse/v5.5/text-to-video")
SIZES = (("360p", 5), ("540p", 5), ("720p", 5), ("720p", 8), ("1080p", 5))
RARE = 5  # generations still generating, spread over the history, whatever the journal's size: the rare status
ROUNDS = 12  # each path is timed in rounds that alternate between the journals, so a busy moment hits all alike
PER_ROUND = 8


Values = tuple[Any, ...]


def _generation_rows(count: int, now: float) -> Iterator[tuple[Values, list[Values], Values]]:
    """Each video's generation row, its status changes and its create intent, oldest first."""
    for number in range(count):
        created = now - (count - number) * SPACING_SECONDS
        model = MODELS[number % len(MODELS)]
        resolution, duration = SIZES[number % len(SIZES)]
        request = {
            "model": model,
            "prompt": f"a paper boat drifting down a rainy street, take {number}",
            "resolution": resolution,
            "duration": duration,
            "negative_prompt": "blurry",
            "seed": number,
        }
        request_json = json.dumps(request)
        key = hashlib.sha256(request_json.encode()).hexdigest()
        generation_id = f"{uuid.UUID(int=number + 1)}:{model}"
        failed = number % 20 == 7
        generating = number in {count * part // RARE + 3 for part in range(RARE)}
        status = "failed" if failed else "generating" if generating else "completed"
        completed = created + 70 + number % 40 if status == "completed" else None
        changes = [
            (generation_id, created, "queued", "waiting"),
            (generation_id, created + 20, "generating", "generating"),
        ]
        if status != "generating":
            changes.append((generation_id, (completed or created + 90), status, "success" if completed else "failed"))
        yield (
            (
                generation_id,
                created,
                (completed or created + 90),
                request_json,
                key,
                status,
                "success" if completed else status,
                f"https://cdn.aimlapi.com/pixverse/{uuid.UUID(int=number + 1).hex}/video.mp4" if completed else None,
                "content moderation" if failed else None,
                json.dumps({"tokens_used": 840_000}),
                f"/home/user/Videos/pixverse/{number:08d}-a-paper-boat.mp4" if completed else None,
                2_400_000 if completed else None,
                resolution,
                duration,
                0.42,
                completed,
                (completed - 5) if completed else None,
                model,
                False,
            ),
            changes,
            (
                uuid.UUID(int=number + 1).hex,
                created - 1,
                key,
                request_json,
                0.42,
                False,
                None,
                generation_id,
                "created",
                "bench",
                f"pixverse-mcp.{uuid.UUID(int=number + 1).hex}",
                None,
                None,
            ),
        )


GENERATION_COLUMNS = (
    "id, created_at, updated_at, request_json, request_key, status, raw_status, video_url, error, usage_json,"
    " local_path, file_size, resolution, duration, cost_usd, completed_at, pending_until, model, cost_estimated"
)
INTENT_COLUMNS = (
    "id, created_at, request_key, request_json, estimate_usd, outcome_unknown, detail, generation_id, state, sender,"
    " client_request_id, confirmation, settle_until"
)


def _fill(count: int, now: float, insert: Callable[[str, list[tuple[Any, ...]]], None]) -> None:
    batch: tuple[list[Any], list[Any], list[Any]] = ([], [], [])

    def flush() -> None:
        insert("generations", batch[0])
        insert("status_changes", batch[1])
        insert("create_intents", batch[2])
        for part in batch:
            part.clear()

    for generation, changes, intent in _generation_rows(count, now):
        batch[0].append(generation)
        batch[1].extend(changes)
        batch[2].append(intent)
        if len(batch[0]) >= 20_000:
            flush()
    flush()


_COLUMNS = {
    "generations": GENERATION_COLUMNS,
    "status_changes": "generation_id, at, status, raw_status",
    "create_intents": INTENT_COLUMNS,
}


def sqlite_journal(count: int) -> Path:
    """The cached SQLite journal of `count` videos (built on first use, at the schema of the code that built it:
    delete BUILD_DIR to build it again)."""
    import sqlite3

    path = BUILD_DIR / f"sqlite-{count}.sqlite3"
    if path.exists():
        return path
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    asyncio.run(_open_and_close(SqliteStorage(building)))
    connection = sqlite3.connect(building, isolation_level=None)
    connection.execute("BEGIN")

    def insert(table: str, values: list[tuple[Any, ...]]) -> None:
        if values:
            marks = ", ".join("?" * len(values[0]))
            connection.executemany(f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})", values)

    _fill(count, time.time(), insert)
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    building.rename(path)
    return path


async def _open_and_close(storage: Storage) -> None:
    await storage.recent(limit=1)
    await storage.close()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


Step = Callable[[int], Awaitable[None]]


def _paths(storage: Storage, count: int) -> dict[str, Step]:
    """What each measured path does on an opened journal of `count` videos (one step: one tool call's reads and
    writes)."""
    old_id = f"{uuid.UUID(int=2)}:{MODELS[1]}"
    old = Generation(id=old_id, status=GenerationStatus.COMPLETED, video_url="https://cdn.example/v.mp4")
    request = {"model": MODELS[0], "prompt": "a fresh boat", "resolution": "720p", "duration": 5}

    async def create(number: int) -> None:
        await storage.last_cost(MODELS[0], "720p", 5)
        await storage.spent_since(utc_midnight(time.time()))
        key = f"bench-{count}-{number}-{uuid.uuid4().hex}"
        claim = CreateClaim(
            request=request,
            key=key,
            sender="bench",
            reattach_since=time.time() - 600,
            budget=Budget(1e9, 0.42),
            estimate_usd=0.42,
        )
        claimed = await storage.claim_create(claim)
        assert isinstance(claimed, Proceed), claimed
        generation = Generation(id=f"{uuid.uuid4()}:{MODELS[0]}", status=GenerationStatus.QUEUED)
        await storage.complete_create(AnsweredCreate(claimed.intent_id, generation, request, key, time.time(), 0.42))
        await storage.ready_times(limit=200)

    async def status(_number: int) -> None:
        await storage.get(old_id)
        await storage.record_status(old)

    async def listing(_number: int) -> None:
        await storage.recent(limit=20)
        await storage.pending_creates(limit=20)

    async def rare(_number: int) -> None:
        await storage.recent(limit=20, status=GenerationStatus.GENERATING)

    return {"create": create, "status": status, "list": listing, "rare status": rare}


async def measure(opened: dict[int, Storage]) -> dict[int, dict[str, float]]:
    """Median milliseconds of each path on each opened journal (keyed by its size), timed in alternating rounds."""
    paths = {count: _paths(storage, count) for count, storage in opened.items()}
    samples: dict[int, dict[str, list[float]]] = {count: {} for count in opened}
    for round_number in range(ROUNDS + 1):  # round 0 warms the caches of pages and statements, untimed
        for name in paths[min(paths)]:
            for count, steps in paths.items():
                for number in range(PER_ROUND):
                    started = time.perf_counter()
                    await steps[name](round_number * PER_ROUND + number)
                    if round_number:
                        samples[count].setdefault(name, []).append(time.perf_counter() - started)
    return {count: {name: _median_ms(times) for name, times in by_name.items()} for count, by_name in samples.items()}


async def cold_starts(make: dict[int, Callable[[], Storage]]) -> dict[int, float]:
    """Median milliseconds from a new storage on each journal to its first `recent` answer, in alternating rounds."""
    samples: dict[int, list[float]] = {count: [] for count in make}
    for _ in range(ROUNDS):
        for count, new_storage in make.items():
            storage = new_storage()
            started = time.perf_counter()
            await storage.recent(limit=20)
            samples[count].append(time.perf_counter() - started)
            await storage.close()
            _integrity_checks_done()
    return {count: _median_ms(times) for count, times in samples.items()}


def _integrity_checks_done() -> None:
    """Wait for the SQLite journals' background integrity checks (one per opening: 4.5 s on 1M videos) to end, so
    none runs on while something else is timed."""
    for thread in threading.enumerate():
        if thread.name == "journal-check":
            thread.join()


async def _sqlite_run(copies: dict[int, Path]) -> dict[int, dict[str, float]]:
    figures: dict[int, dict[str, float]] = {}
    for count, copy in copies.items():
        started = time.perf_counter()
        await _open_and_close(SqliteStorage(copy))  # upgrades a journal built by older code
        figures[count] = {"upgrade": (time.perf_counter() - started) * 1000}
        _integrity_checks_done()
    cold = await cold_starts({count: functools.partial(SqliteStorage, copy) for count, copy in copies.items()})
    opened: dict[int, Storage] = {count: SqliteStorage(copy) for count, copy in copies.items()}
    for storage in opened.values():
        await storage.recent(limit=1)
    _integrity_checks_done()
    try:
        measured = await measure(opened)
    finally:
        for storage in opened.values():
            await storage.close()
    for count in copies:
        figures[count].update(measured[count], **{"cold start": cold[count]})
    largest = max(copies)
    figures[largest].update(await _retention(SqliteStorage(copies[largest]), largest))
    return figures


async def _retention(storage: SqliteStorage, count: int) -> dict[str, float]:
    """Retention catching up on the oldest tenth of the journal: its total time and its longest transaction (how
    long every other writer, in any process, may wait for it)."""
    transactions: list[float] = []
    run = storage._run

    async def timed(operation: Callable[[], Any], *, exclusive: bool = False) -> Any:
        started = time.perf_counter()
        try:
            return await run(operation, exclusive=exclusive)
        finally:
            transactions.append(time.perf_counter() - started)

    storage._run = timed  # type: ignore[method-assign]
    oldest = time.time() - count * SPACING_SECONDS
    try:
        started = time.perf_counter()
        removed = await storage.prune(before=oldest + count // 10 * SPACING_SECONDS)
        total = time.perf_counter() - started
    finally:
        await storage.close()
    return {"pruned": removed, "prune seconds": total, "longest prune transaction": max(transactions) * 1000}


def _rows(backend: str, by_size: dict[int, dict[str, float]]) -> list[Row]:
    smallest, largest = min(by_size), max(by_size)
    rows: list[Row] = []
    for name in ("create", "status", "list", "rare status", "cold start"):
        if name not in by_size[smallest]:
            continue
        base = by_size[smallest][name]
        for size in sorted(by_size):
            if size == smallest:
                continue
            ours = by_size[size][name]
            target = TARGET if size == largest else ""
            rows.append(
                (
                    f"P6 {backend} {name}, {size:,} vs {smallest:,}",
                    f"{ours:.2f} ms",
                    f"{base:.2f} ms",
                    f"{ours / base:.2f}x",
                    target,
                )
            )
    if by_size[largest].get("upgrade", 0) > 1000:
        rows.append(
            (
                f"P6 {backend} one-time upgrade of {largest:,}",
                f"{by_size[largest]['upgrade'] / 1000:.1f} s",
                "",
                "",
                "(once per journal)",
            )
        )
    if "pruned" in by_size[largest]:
        figures = by_size[largest]
        rows.append(
            (
                f"P6 {backend} retention of {figures['pruned']:,.0f} old videos from {largest:,}",
                f"{figures['longest prune transaction']:.0f} ms",
                "",
                "",
                f"(longest transaction; {figures['prune seconds']:.1f} s in all)",
            )
        )
    if "bytes per video" in by_size[largest]:
        rows.append((f"P6 {backend} file size per video", f"{by_size[largest]['bytes per video']:.0f} B", "", "", ""))
    return rows


def bench_sqlite() -> list[Row]:
    """The SQLite part of P6."""
    with tempfile.TemporaryDirectory(prefix="pixverse-p6-") as work:
        copies = {}
        for count in SQLITE_SIZES:
            source = sqlite_journal(count)
            copies[count] = Path(work, source.name)
            shutil.copyfile(source, copies[count])
        os.sync()  # the copies written out before anything is timed
        by_size = asyncio.run(_sqlite_run(copies))
    for count in SQLITE_SIZES:
        by_size[count]["bytes per video"] = sqlite_journal(count).stat().st_size / count
    return _rows("SQLite", by_size)


def bench_p6() -> list[Row]:
    """P6: journals of 1k, 100k and 1M videos on SQLite, 1k and 100k on PostgreSQL (see the module docstring)."""
    return bench_sqlite() + bench_postgres()


def bench_postgres() -> list[Row]:
    """The PostgreSQL part of P6 (skipped, saying so, without the server binaries or the driver)."""
    try:
        import asyncpg  # noqa: F401

        from tests.postgres_server import RunningPostgres, server_binaries

        server_binaries()
    except (ImportError, RuntimeError) as exc:
        print(f"P6 PostgreSQL skipped: {exc}", file=sys.stderr)
        return [("P6 PostgreSQL", "skipped", "", "", f"({exc})")]
    server = RunningPostgres.start()
    try:
        by_size = asyncio.run(_postgres_run({count: server.new_database() for count in POSTGRES_SIZES}))
    finally:
        server.stop()
    return _rows("PostgreSQL", by_size)


async def _postgres_run(urls: dict[int, str]) -> dict[int, dict[str, float]]:
    import asyncpg

    from pixverse_mcp.storage.postgres import PostgresStorage

    for count, url in urls.items():
        await _open_and_close(PostgresStorage(url))
        connection = await asyncpg.connect(url)
        pending: list[tuple[str, list[Values]]] = []
        _fill(count, time.time(), lambda table, values, into=pending: into.append((table, list(values))))
        async with connection.transaction():
            for table, values in pending:
                if values:
                    await connection.copy_records_to_table(table, records=values, columns=_COLUMNS[table].split(", "))
        await connection.execute("ANALYZE")
        await connection.close()
    cold = await cold_starts({count: functools.partial(PostgresStorage, url) for count, url in urls.items()})
    opened: dict[int, Storage] = {count: PostgresStorage(url) for count, url in urls.items()}
    try:
        measured = await measure(opened)
    finally:
        for storage in opened.values():
            await storage.close()
    return {count: {**measured[count], "cold start": cold[count]} for count in urls}


if __name__ == "__main__":
    for produced in bench_p6():
        print("  ".join(produced))
