"""Replicas benchmark: three servers on one PostgreSQL, 300 videos, 900 concurrent waits (300 per replica).

    .venv/bin/python benchmarks/replicas.py                          # about a minute and a half
    .venv/bin/python benchmarks/replicas.py --client-keepalive 1     # clients drop idle connections after 1 s

What runs, each in a process of its own (2 cores are shared by all of them):
- a PostgreSQL (`tests/postgres_server.RunningPostgres`; each phase gets a fresh database);
- the sandbox, each video taking its size's usual time +-15 %, every duration scaled by TIME_SCALE;
- the replicas, `python -m pixverse_mcp --transport streamable-http` with the same PIXVERSE_MCP_DATABASE_URL;
- a prober that asks each replica's `/healthz` every 50 ms (a process of its own, so the load client's work does
  not skew its timing);
- this process: the load client, SESSIONS_PER_REPLICA MCP sessions per replica.

Two phases, one after the other:
- baseline: one replica, BASELINE_VIDEOS videos created with `create_video`, then one
  `get_video_status(wait_seconds=...)` per video: what one waiter on one replica costs;
- replicas: three replicas, 300 videos created all at once with `create_video` (spread over the replicas), then at
  once a `get_video_status(wait_seconds=...)` for every video on every replica: 900 waits, up to 300 per replica.

What it reports (it prints, never asserts):
- all complete? every wait came back completed with its own generation's video; and how many MCP client sessions
  died under the load (with why: the SDK's client ends a whole session on one failed HTTP request);
- status requests per video: the sandbox's counter / videos, and the replicas' figure against the baseline's (one
  lease-holding poller per video is the aim, whatever the number of waiters);
- database transactions per video: `sum(xact_commit)` for the database in pg_stat_database, after minus before,
  divided by videos (creates, waits, leases, journal writes: everything the phase did). "After" is read once the
  replicas have exited: PostgreSQL publishes a busy backend's counters up to 10 s late, an exiting one's at once.
  It counts transactions, not network round trips: each storage operation of ours is two (its own: BEGIN, its
  statements, COMMIT; then asyncpg's reset query when the pool takes the connection back, a transaction of its own);
- event-loop lag per replica: NOT measured inside the replica (the package exposes nothing for it and is not changed
  for a benchmark). The proxy is the latency of `GET /healthz` sampled every 50 ms by the prober: a request the
  replica's own event loop answers, so it is loop lag plus one local HTTP exchange (the idle figure, sampled before
  the load, is that floor). Measured in the replicas phase;
- peak RSS per replica: VmHWM from /proc/<pid>/status at the end of its phase.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pixverse_mcp.polling import expected_generation_seconds  # noqa: E402
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox, SandboxConfig  # noqa: E402
from tests.http_server import STATEFUL, HttpServer, free_port, served  # noqa: E402
from tests.postgres_server import RunningPostgres  # noqa: E402

# A 720p 5 s video takes about 10 s instead of 35 s (the shortest over 8 s: longer than creating all 300 takes, so
# every wait starts while its video is still running); the polling schedule is scaled the same way.
TIME_SCALE = 0.3
REPLICAS = 3
VIDEOS = 300
BASELINE_VIDEOS = 60
SESSIONS_PER_REPLICA = 10
WAIT_SECONDS = 120.0
LOAD_LIMIT_SECONDS = 150.0
PROBE_INTERVAL_SECONDS = 0.05
IDLE_PROBE_SECONDS = 2.0
TOKEN = "replicas-benchmark-token-3f9a1c7"
# How long the load client keeps an idle connection for reuse: httpx's default (what the MCP SDK's client uses) unless
# `--client-keepalive SECONDS` says otherwise. The replicas' uvicorn closes idle connections after its own default of
# 5 s too, and the SDK loses its whole session when a request goes out on a connection the server is closing.
client_keepalive = 5.0
SIZES = (("720p", 5), ("720p", 5), ("1080p", 5), ("540p", 8))


def realistic_timings(seed: int) -> Callable[[dict[str, Any]], tuple[float, float]]:
    """Each video takes its size's usual time, +-15 %, scaled; a tenth of it queued."""
    rng = random.Random(seed)

    def timings(body: dict[str, Any]) -> tuple[float, float]:
        usual = expected_generation_seconds(body.get("resolution", "720p"), body.get("duration", 5))
        total = usual * rng.uniform(0.85, 1.15) * TIME_SCALE
        return total * 0.1, total * 0.9

    return timings


# --- child processes ----------------------------------------------------------------------------------------------


def sandbox_child(port: int) -> None:
    """The sandbox, until stdin closes."""
    with RunningSandbox(SandboxConfig(timings=realistic_timings(seed=11)), port=port):
        print("ready", flush=True)
        sys.stdin.read()


def probe_child(base_urls: list[str]) -> None:
    """GET /healthz on each URL every PROBE_INTERVAL_SECONDS until stdin closes; then print the samples as JSON:
    one list per URL of [epoch seconds, latency seconds or null when it failed]."""
    stop = threading.Event()
    samples: list[list[tuple[float, float | None]]] = [[] for _ in base_urls]

    def probe(index: int, url: str) -> None:
        with httpx2.Client(timeout=5.0) as http:
            next_at = time.perf_counter()
            while not stop.is_set():
                at, started = time.time(), time.perf_counter()
                try:
                    latency: float | None = (
                        time.perf_counter() - started if http.get(url + "/healthz").status_code == 200 else None
                    )
                except httpx2.HTTPError:
                    latency = None
                samples[index].append((at, latency))
                next_at += PROBE_INTERVAL_SECONDS
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at = max(next_at, time.perf_counter())

    threads = [threading.Thread(target=probe, args=(i, url), daemon=True) for i, url in enumerate(base_urls)]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    print(json.dumps(samples), flush=True)


@contextmanager
def child(*args: str) -> Iterator[subprocess.Popen[str]]:
    """This file run as a child process with `args`; it runs until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"child {args[0]} did not start")
        yield process
    finally:
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def finish_probe(process: subprocess.Popen[str]) -> list[list[tuple[float, float | None]]]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    output = process.stdout.read()
    process.wait(timeout=20)
    samples: list[list[tuple[float, float | None]]] = json.loads(output.strip().splitlines()[-1])
    return samples


# --- measurements -------------------------------------------------------------------------------------------------


async def transactions(admin_url: str, database: str) -> int:
    """Committed transactions of `database` so far, as published (a live backend publishes its own late)."""
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        value = await connection.fetchval("SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = $1", database)
    finally:
        await connection.close()
    return int(value or 0)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# --- the load -----------------------------------------------------------------------------------------------------


class Session:
    """An MCP SDK client session to one replica, run in a task of its own: when its transport fails, the failure is
    recorded (with when it happened) instead of ending the whole benchmark."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.client: Any = None
        self.failures: list[str] = []
        self.closing = anyio.Event()

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        started = False
        try:
            async with (
                httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=httpx2.Timeout(WAIT_SECONDS + 60, connect=10.0),
                    limits=httpx2.Limits(
                        max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=client_keepalive
                    ),
                ) as http,
                Client(streamable_http_client(self.server.url, http_client=http)) as client,
            ):
                self.client = client
                started = True
                task_status.started()
                await self.closing.wait()
        except Exception as exc:
            self.failures.append(f"{time.strftime('%H:%M:%S')} session to {self.server.base_url}: {leaves(exc)}")
            if not started:
                raise

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        return await self.client.call_tool(name, arguments)


def leaves(error: BaseException) -> str:
    """The innermost exceptions of an exception group (what actually went wrong), briefly."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(leaves(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}".strip()


@dataclass
class Waits:
    """How the waits of one phase went."""

    outcomes: dict[tuple[int, int], dict[str, Any] | str] = field(default_factory=dict)
    in_flight: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    peak_in_flight: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def completed(self, created: list[str | None]) -> tuple[int, int]:
        """(waits that came back completed with their own video, waits completed with another generation's id)."""
        right = wrong = 0
        for (video, _replica), outcome in self.outcomes.items():
            if isinstance(outcome, dict) and outcome.get("status") == "completed" and outcome.get("video_url"):
                if outcome.get("generation_id") == created[video]:
                    right += 1
                else:
                    wrong += 1
        return right, wrong


async def create_all(sessions: list[list[Session]], count: int, label: str) -> tuple[list[str | None], list[str]]:
    """`count` videos of the usual sizes, created all at once with `create_video`, video i on replica i % replicas."""
    created: list[str | None] = [None] * count
    errors: list[str] = []

    async def create(number: int) -> None:
        resolution, duration = SIZES[number % len(SIZES)]
        arguments = {"prompt": f"{label} video {number}", "resolution": resolution, "duration": duration}
        replica = sessions[number % len(sessions)]
        try:
            result = await replica[(number // len(sessions)) % len(replica)].call_tool("create_video", arguments)
        except Exception as exc:
            errors.append(f"create {number}: {type(exc).__name__}: {exc}")
            return
        generation_id = (result.structured_content or {}).get("generation_id")
        if result.is_error or not generation_id:
            errors.append(f"create {number}: {result.structured_content}")
        else:
            created[number] = generation_id

    async with anyio.create_task_group() as group:
        for number in range(count):
            group.start_soon(create, number)
    return created, errors


async def wait_all(sessions: list[list[Session]], created: list[str | None]) -> Waits:
    """For every created video, `get_video_status(wait_seconds=...)` on every replica, all at once."""
    waits = Waits()

    async def wait(video: int, replica: int, generation_id: str) -> None:
        client = sessions[replica][video % len(sessions[replica])]
        waits.in_flight[replica] += 1
        waits.peak_in_flight[replica] = max(waits.peak_in_flight[replica], waits.in_flight[replica])
        started = time.perf_counter()
        try:
            result = await client.call_tool(
                "get_video_status", {"generation_id": generation_id, "wait_seconds": WAIT_SECONDS}
            )
            content = result.structured_content or {}
            waits.outcomes[(video, replica)] = content if not result.is_error else f"error: {content}"
        except Exception as exc:
            waits.outcomes[(video, replica)] = f"{type(exc).__name__}: {exc}"
        finally:
            waits.in_flight[replica] -= 1
            waits.seconds.append(time.perf_counter() - started)

    with anyio.move_on_after(LOAD_LIMIT_SECONDS) as scope:
        async with anyio.create_task_group() as group:
            for video, generation_id in enumerate(created):
                for replica in range(len(sessions)):
                    if generation_id is not None:
                        group.start_soon(wait, video, replica, generation_id)
    if scope.cancelled_caught:
        waits.errors.append(f"the waits did not all finish within {LOAD_LIMIT_SECONDS:g} s")
    return waits


async def upstream_stats(sandbox_url: str) -> dict[str, int]:
    async with httpx2.AsyncClient(base_url=sandbox_url) as http:
        stats: dict[str, int] = (await http.get("/_sandbox/stats")).json()
        return stats


@dataclass
class Phase:
    """What one phase (one or several replicas on a database of their own) measured."""

    videos: int
    created: list[str | None]
    create_errors: list[str]
    session_failures: list[str]
    waits: Waits
    creates: int
    status_requests: int
    transactions_before: int
    wait_wall_seconds: float
    probes: list[list[tuple[float, float | None]]] | None = None
    window: tuple[float, float] = (0.0, 0.0)
    """When the waits started and ended (epoch seconds)."""
    idle_until: float = 0.0
    """When the creates started: the probes before it saw idle replicas."""
    peak_rss_mb: list[float] = field(default_factory=list)
    transactions: int = 0
    """Committed in the database during the phase (set once the replicas have exited)."""


async def run_phase(
    postgres: RunningPostgres, database_url: str, sandbox_url: str, servers: list[HttpServer], videos: int, label: str
) -> Phase:
    database = database_url.rsplit("/", 1)[1]
    sessions = [[Session(server) for _ in range(SESSIONS_PER_REPLICA)] for server in servers]
    everyone = [session for replica_sessions in sessions for session in replica_sessions]
    async with anyio.create_task_group() as running:
        for session in everyone:
            await running.start(session.run)
        for replica_sessions in sessions:  # each replica opens its pool (and the first one migrates) before counting
            await replica_sessions[0].call_tool("list_videos", {"limit": 1})
        with ExitStack() as probing:
            prober = None
            if len(servers) > 1:
                prober = probing.enter_context(child("--probe", *(server.base_url for server in servers)))
                await anyio.sleep(IDLE_PROBE_SECONDS)
            upstream_before = await upstream_stats(sandbox_url)
            before = await transactions(postgres.admin_url, database)
            creates_started_at = time.time()
            created, create_errors = await create_all(sessions, videos, label)
            started_at, started = time.time(), time.perf_counter()
            waits = await wait_all(sessions, created)
            wall = time.perf_counter() - started
            window = (started_at, time.time())
            upstream = await upstream_stats(sandbox_url)
            probes = finish_probe(prober) if prober is not None else None
        for session in everyone:
            session.closing.set()
    return Phase(
        videos=videos,
        created=created,
        create_errors=create_errors,
        session_failures=[failure for session in everyone for failure in session.failures],
        waits=waits,
        creates=upstream["creates"] - upstream_before["creates"],
        status_requests=upstream["status_requests"] - upstream_before["status_requests"],
        transactions_before=before,
        wait_wall_seconds=wall,
        probes=probes,
        window=window,
        idle_until=creates_started_at,
        peak_rss_mb=[peak_rss_mb(server.process.pid) for server in servers],
    )


def report(baseline: Phase, replicated: Phase) -> None:
    rows: list[tuple[str, str]] = []
    for name, phase, replicas in (("baseline", baseline, 1), ("replicas", replicated, REPLICAS)):
        made = sum(generation_id is not None for generation_id in phase.created) or 1
        right, wrong = phase.waits.completed(phase.created)
        expected_waits = made * replicas
        rows += [
            (f"{name}: videos created", f"{made} / {phase.videos} (create POSTs at the sandbox: {phase.creates})"),
            (
                f"{name}: waits completed",
                f"{right} / {expected_waits} ({'all complete' if right == expected_waits else 'NOT all complete'}"
                f"; {wrong} with another video's id)",
            ),
            (
                f"{name}: MCP client sessions lost",
                f"{len(phase.session_failures)} / {replicas * SESSIONS_PER_REPLICA}"
                + (f" (first: {phase.session_failures[0]})" if phase.session_failures else ""),
            ),
            (f"{name}: peak concurrent waits per replica", ", ".join(map(str, phase.waits.peak_in_flight.values()))),
            (
                f"{name}: wait phase wall time; wait p50 / p99",
                f"{phase.wait_wall_seconds:.1f} s; {percentile(phase.waits.seconds, 0.5):.1f} s / "
                f"{percentile(phase.waits.seconds, 0.99):.1f} s",
            ),
            (
                f"{name}: status requests per video",
                f"{phase.status_requests / made:.2f} ({phase.status_requests} / {made})",
            ),
            (
                f"{name}: database transactions per video",
                f"{phase.transactions / made:.1f} ({phase.transactions} xact_commit / {made}; half of them asyncpg's "
                "reset query on releasing a pooled connection)",
            ),
        ]
    made = sum(generation_id is not None for generation_id in baseline.created) or 1
    made_replicated = sum(generation_id is not None for generation_id in replicated.created) or 1
    ratio = (replicated.status_requests / made_replicated) / max(baseline.status_requests / made, 1e-9)
    rows.append(("status requests per video, replicas / baseline", f"{ratio:.2f}x (3 waiters on 3 replicas vs 1)"))
    start, end = replicated.window
    for index, samples in enumerate(replicated.probes or []):
        idle = [latency for at, latency in samples if at < replicated.idle_until and latency is not None]
        busy = [latency for at, latency in samples if start <= at <= end and latency is not None]
        failed = sum(1 for at, latency in samples if start <= at <= end and latency is None)
        rows.append(
            (
                f"replica {index}: /healthz latency (loop-lag proxy)",
                f"p99 {percentile(busy, 0.99) * 1000:.1f} ms during the waits "
                f"(p50 {percentile(busy, 0.5) * 1000:.1f} ms, "
                f"max {max(busy, default=float('nan')) * 1000:.0f} ms, {len(busy)} samples, {failed} failed); "
                f"idle p99 {percentile(idle, 0.99) * 1000:.1f} ms",
            )
        )
    for index, rss in enumerate(replicated.peak_rss_mb):
        rows.append((f"replica {index}: peak RSS (VmHWM)", f"{rss:.0f} MB"))
    rows.append(("baseline replica: peak RSS (VmHWM)", f"{baseline.peak_rss_mb[0]:.0f} MB"))
    width = max(len(name) for name, _ in rows)
    print(
        f"baseline: 1 replica, {baseline.videos} videos, 1 wait each; replicas: {REPLICAS} replicas, "
        f"{replicated.videos} videos, a wait on every replica for each; sandbox and polling scaled by {TIME_SCALE}"
    )
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    for phase in (baseline, replicated):
        for error in (phase.session_failures + phase.create_errors + phase.waits.errors)[:10]:
            print(f"error: {error}")
        outcomes = phase.waits.outcomes.values()
        problems = [o for o in outcomes if not isinstance(o, dict) or o.get("status") != "completed"]
        for problem in problems[:5]:
            print(f"not completed: {str(problem)[:300]}")


def published_since(postgres: RunningPostgres, database_url: str, before: int) -> int:
    """Transactions committed in the database since `before`, read once its clients have exited."""
    return anyio.run(transactions, postgres.admin_url, database_url.rsplit("/", 1)[1]) - before


def replica_env(sandbox_url: str, database_url: str, state: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "AIMLAPI_API_KEY": SANDBOX_API_KEY,
        "AIMLAPI_BASE_URL": sandbox_url,
        "PIXVERSE_MCP_POLL_TIME_SCALE": str(TIME_SCALE),
        "PIXVERSE_MCP_STATE_DIR": str(state),
        "PIXVERSE_MCP_OUTPUT_DIR": str(state / "videos"),  # never the user's own videos folder
        "PIXVERSE_MCP_LOG_LEVEL": "WARNING",
        "PIXVERSE_MCP_DATABASE_URL": database_url,
        "PIXVERSE_MCP_AUTH_TOKEN": TOKEN,
    }


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="pixverse-replicas-bench-"))
    with ExitStack() as stack:
        print("starting PostgreSQL and the sandbox ...", file=sys.stderr, flush=True)
        postgres = RunningPostgres.start()
        stack.callback(postgres.stop)
        sandbox_port = free_port()
        stack.enter_context(child("--sandbox", str(sandbox_port)))
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"

        # The baseline: one replica, one wait per video, a database of its own (no history to learn from either).
        print(f"baseline: 1 replica, {BASELINE_VIDEOS} videos ...", file=sys.stderr, flush=True)
        database_url = postgres.new_database()
        with served(replica_env(sandbox_url, database_url, logs / "baseline"), logs / "baseline", STATEFUL) as solo:
            baseline = anyio.run(run_phase, postgres, database_url, sandbox_url, [solo], BASELINE_VIDEOS, "baseline")
        baseline.transactions = published_since(postgres, database_url, baseline.transactions_before)

        print(f"replicas: {REPLICAS} replicas, {VIDEOS} videos, {REPLICAS * VIDEOS} waits ...", file=sys.stderr)
        database_url = postgres.new_database()
        with ExitStack() as replicas:
            servers = [
                replicas.enter_context(
                    served(replica_env(sandbox_url, database_url, logs / f"replica-{i}"), logs / f"replica-{i}")
                )
                for i in range(REPLICAS)
            ]
            replicated = anyio.run(run_phase, postgres, database_url, sandbox_url, servers, VIDEOS, "replicated")
        replicated.transactions = published_since(postgres, database_url, replicated.transactions_before)
        report(baseline, replicated)
        print(f"replica logs: {logs}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sandbox":
        sandbox_child(int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--probe":
        probe_child(sys.argv[2:])
    else:
        assert len(TOKEN) == 32
        if len(sys.argv) == 3 and sys.argv[1] == "--client-keepalive":
            client_keepalive = float(sys.argv[2])
        main()
