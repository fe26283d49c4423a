"""Several replicas on one PostgreSQL: real server processes over Streamable HTTP, one real database, the sandbox.

Each replica is `python -m pixverse_mcp --transport streamable-http` with the same PIXVERSE_MCP_DATABASE_URL and a
state directory of its own, as behind a load balancer. What they must guarantee together:
- one payment per identical request: six identical blocking calls arriving at once on three replicas make one create
  POST and all get the same generation (the race is run a few more times: a lost one shows in some runs only), and
  the status requests for it stay within 1.5x of what one call on one replica makes;
- everything users see is shared: a video made on one replica is listed, read and costed the same on the others;
- one poller per generation, and a takeover when it goes: SIGKILL (or SIGSTOP: its lease must then expire) the replica
  holding the polling lease, and a waiter on the other replica still gets the video, with no second create;
- a database that cannot be reached refuses the create, says so, and sends nothing.
"""

from __future__ import annotations

import json
import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextResourceContents

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import replicas as shared_replicas
from tests.http_server import HttpServer, free_port, sdk_client
from tests.postgres_server import RunningPostgres
from tests.stdio_support import structured, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKEN = "replicas-e2e-token-7c41d09be2a35"
assert len(TOKEN) == 32
# A video takes a few seconds: long enough for the six calls to overlap, short enough for the suite.
FEW_SECONDS = SandboxConfig(queued_seconds=1, generating_seconds=4)
# Long enough to kill the poller mid-way and still have the survivor poll for a while.
LONG = SandboxConfig(queued_seconds=1, generating_seconds=15)
# Generous bounds: they only stop a hang from stalling the suite, they measure nothing.
TEST_LIMIT_SECONDS = 120.0
CALL_TIMEOUT_SECONDS = 60  # timeout_seconds / wait_seconds given to the tools (the SDK reads for 60 s)
STATUS_REQUEST_FACTOR = 1.5
# Repeats of the six-call race (each a second or so): a lost race shows up in some runs only.
RACE_ROUNDS = 8


def replicas(count: int, sandbox: RunningSandbox | None, database_url: str, tmp_path: Path, **extra: str) -> Any:
    """`count` replicas sharing `database_url` (see `tests.conftest.replicas`), logged in with this module's token."""
    return shared_replicas(count, sandbox, database_url, tmp_path, token=TOKEN, **extra)


# Lines of the replicas' logs that say nothing about what the replicas decided (each HTTP exchange, in detail).
NOISE = ("httpcore2.", "httpx2:", "uvicorn.access", "sse_starlette", "mcp.server.lowlevel", "asyncio:", "client: GET")


def logs(servers: list[HttpServer]) -> str:
    """What each replica logged, without the per-request noise, for assertion messages."""
    parts = []
    for index, server in enumerate(servers):
        lines = [line for line in server.log().splitlines() if not any(noise in line for noise in NOISE)]
        parts.append(f"--- replica {index} (pid {server.process.pid}) ---\n" + "\n".join(lines))
    return "\n".join(parts)


def status_requests(sandbox: RunningSandbox) -> int:
    return sandbox.state.stats()["status_requests"]


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def all_at_once(
    clients: list[Client], tool: str, arguments: dict[str, Any], *, calls: int
) -> list[CallToolResult]:
    """`calls` identical calls of `tool`, spread over `clients` in turn, all started at once."""
    results: list[CallToolResult] = []

    async def call(client: Client) -> None:
        results.append(await client.call_tool(tool, arguments))

    async with anyio.create_task_group() as group:
        for number in range(calls):
            group.start_soon(call, clients[number % len(clients)])
    return results


async def test_identical_calls_on_three_replicas_make_one_create_and_poll_like_one_replica(
    postgres: RunningPostgres, tmp_path: Path
) -> None:
    prompt = "six identical calls: a lighthouse in a storm at night"
    results: dict[int, CallToolResult] = {}
    heard: dict[int, int] = dict.fromkeys(range(6), 0)
    race_creates: dict[int, tuple[int, list[str]]] = {}

    # The baseline first: one replica, one waiter, a generation of the same size (720p, 5 s) and timings. A database
    # and a sandbox of its own, so both runs start with no history to learn the schedule from and count from zero.
    with (
        RunningSandbox(SandboxConfig(**vars(FEW_SECONDS))) as solo_sandbox,
        replicas(1, solo_sandbox, postgres.new_database(), tmp_path / "solo") as (solo,),
    ):
        with anyio.fail_after(TEST_LIMIT_SECONDS):
            async with sdk_client(solo, token=TOKEN) as client:
                alone = await client.call_tool(
                    "generate_video_blocking",
                    {"prompt": "one lonely call: a windmill at sunrise", "timeout_seconds": CALL_TIMEOUT_SECONDS},
                )
        baseline = status_requests(solo_sandbox)
    assert not alone.is_error, text_of(alone)
    assert structured(alone)["status"] == "completed", text_of(alone)
    assert solo_sandbox.state.stats()["creates"] == 1
    assert baseline > 0

    database = postgres.new_database()
    with (
        RunningSandbox(SandboxConfig(**vars(FEW_SECONDS))) as sandbox,
        replicas(3, sandbox, database, tmp_path / "three") as rs,
    ):
        with anyio.fail_after(TEST_LIMIT_SECONDS):
            async with AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(sdk_client(server, token=TOKEN)) for server in rs]
                for client in clients:  # the schema check lists the tools once per client: not during the race
                    await client.list_tools()

                async def generate(number: int, client: Client) -> None:
                    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                        heard[number] += 1

                    results[number] = await client.call_tool(
                        "generate_video_blocking",
                        {"prompt": prompt, "timeout_seconds": CALL_TIMEOUT_SECONDS},
                        progress_callback=on_progress,
                    )

                async with anyio.create_task_group() as group:
                    for number in range(6):  # two per replica, all at once
                        group.start_soon(generate, number, clients[number % 3])
                stats = sandbox.state.stats()

                # The same race again, a few times (it depends on timing): only the claims matter, not the wait.
                for round_number in range(RACE_ROUNDS):
                    creates_before = sandbox.state.stats()["creates"]
                    arguments = {"prompt": f"race {round_number}: a lighthouse in a storm", "timeout_seconds": 1}
                    raced = await all_at_once(clients, "generate_video_blocking", arguments, calls=6)
                    race_ids = sorted({structured(result)["generation_id"] for result in raced})
                    race_creates[round_number] = (sandbox.state.stats()["creates"] - creates_before, race_ids)
            leases = await query(database, "SELECT * FROM leases")
            intents = await query(database, "SELECT created_at, generation_id FROM create_intents ORDER BY created_at")
            generations = await query(
                database, "SELECT id, status FROM generations WHERE request_json LIKE $1", f"%{prompt}%"
            )

    server_logs = logs(rs)
    assert stats["creates"] == 1, (
        f"{stats['creates']} creates reached the sandbox; create intents: {[dict(row) for row in intents]}"
        f"\n{server_logs}"
    )
    contents = [structured(results[number]) for number in range(6)]
    for number, content in enumerate(contents):
        assert not results[number].is_error, text_of(results[number])
        assert content["status"] == "completed", text_of(results[number])
        assert content["video_url"], content
    ids = {content["generation_id"] for content in contents}
    assert len(ids) == 1, ids
    (generation_id,) = ids
    # One call paid; the other five joined it (on its replica or another).
    assert sorted(content["reattached"] for content in contents) == [False] + [True] * 5
    # Every call heard progress, also those on replicas that only follow the database.
    assert all(count > 0 for count in heard.values()), heard
    shared = stats["status_requests"]
    assert shared <= STATUS_REQUEST_FACTOR * baseline, (
        f"{shared} status requests for one generation watched by six calls on three replicas, against {baseline} "
        f"for one call on one replica\n{server_logs}"
    )
    # Every poller let its lease go; the journal has the one generation, completed.
    assert leases == []
    assert [(row["id"], row["status"]) for row in generations] == [(generation_id, "completed")]
    # Every repeat of the race: one create, one generation for all six calls.
    doubled = {number: raced for number, raced in race_creates.items() if raced[0] != 1 or len(raced[1]) != 1}
    assert not doubled, f"rounds with (creates, generation ids) other than one: {doubled}\n{server_logs}"


async def test_a_video_made_on_one_replica_is_listed_read_and_costed_the_same_on_the_others(
    postgres: RunningPostgres, tmp_path: Path
) -> None:
    database = postgres.new_database()
    cap = "5"
    with (
        RunningSandbox(SandboxConfig(**vars(FEW_SECONDS))) as sandbox,
        replicas(3, sandbox, database, tmp_path, PIXVERSE_MCP_DAILY_BUDGET_USD=cap) as rs,
    ):
        with anyio.fail_after(TEST_LIMIT_SECONDS):
            async with AsyncExitStack() as stack:
                a, b, c = [await stack.enter_async_context(sdk_client(server, token=TOKEN)) for server in rs]
                made = await a.call_tool(
                    "generate_video_blocking",
                    {"prompt": "a shared video: a tram in the rain", "timeout_seconds": CALL_TIMEOUT_SECONDS},
                )
                assert not made.is_error, text_of(made)
                on_a = structured(made)
                generation_id = on_a["generation_id"]
                assert on_a["status"] == "completed"

                listed = {}
                for name, client in (("a", a), ("b", b), ("c", c)):
                    listing = await client.call_tool("list_videos", {})
                    assert not listing.is_error, text_of(listing)
                    videos = structured(listing)["videos"]
                    listed[name] = [video for video in videos if video["generation_id"] == generation_id]

                documents = {}
                for name, client in (("a", a), ("b", b), ("c", c)):
                    read = await client.read_resource(f"pixverse://generations/{generation_id}")
                    (document,) = read.contents
                    assert isinstance(document, TextResourceContents)
                    documents[name] = document.text

                # Costs: what B and C say about it, and what the cap leaves, are A's figures.
                looked = {}
                for name, client in (("b", b), ("c", c)):
                    looked[name] = structured(
                        await client.call_tool("get_video_status", {"generation_id": generation_id})
                    )
    assert sandbox.state.stats()["creates"] == 1

    (video_on_a,) = listed["a"]
    assert video_on_a["status"] == "completed"
    assert video_on_a["prompt"] == "a shared video: a tram in the rain"
    assert video_on_a["usage"]
    assert listed["b"] == listed["c"] == [video_on_a]

    assert documents["a"] == documents["b"] == documents["c"]
    document = json.loads(documents["a"])
    assert document["generation_id"] == generation_id
    assert document["video_url"] == on_a["video_url"]
    assert [change["status"] for change in document["status_history"]][-1] == "completed"

    assert on_a["cost_usd"] is not None
    assert on_a["cost_usd"] > 0
    assert on_a["budget_left_usd"] == pytest.approx(float(cap) - on_a["cost_usd"])
    for name in ("b", "c"):
        assert looked[name]["status"] == "completed"
        assert looked[name]["cost_usd"] == pytest.approx(on_a["cost_usd"]), name
        assert looked[name]["budget_left_usd"] == pytest.approx(on_a["budget_left_usd"]), name


@pytest.mark.parametrize(
    "stop_signal",
    [
        # Killed: on this host its pid is gone, so the survivor need not even wait for the lease to expire.
        pytest.param(signal.SIGKILL, id="killed"),
        # Frozen (as a replica on another host that stopped answering looks): its lease must expire first.
        pytest.param(signal.SIGSTOP, id="frozen"),
    ],
)
async def test_when_the_replica_that_polls_dies_a_survivor_takes_over_without_a_second_create(
    postgres: RunningPostgres, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    database = postgres.new_database()
    outcomes: dict[int, CallToolResult | BaseException] = {}
    heard: dict[int, int] = {0: 0, 1: 0}
    holders_seen: list[str] = []

    with (
        RunningSandbox(SandboxConfig(**vars(LONG))) as sandbox,
        replicas(2, sandbox, database, tmp_path, PIXVERSE_MCP_LEASE_SECONDS="3") as rs,
    ):
        pids = {server.process.pid: index for index, server in enumerate(rs)}
        stopped: int | None = None
        try:
            with anyio.fail_after(TEST_LIMIT_SECONDS):
                async with sdk_client(rs[0], token=TOKEN) as client:
                    created = await client.call_tool("create_video", {"prompt": "a long one: a glacier at dusk"})
                assert not created.is_error, text_of(created)
                generation_id = structured(created)["generation_id"]
                assert sandbox.state.stats()["creates"] == 1
                scopes = {0: anyio.CancelScope(), 1: anyio.CancelScope()}

                async def wait_on(index: int) -> None:
                    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                        heard[index] += 1

                    with scopes[index]:
                        try:
                            async with sdk_client(rs[index], token=TOKEN, server_may_be_gone=True) as waiter:
                                await waiter.list_tools()
                                outcomes[index] = await waiter.call_tool(
                                    "get_video_status",
                                    {"generation_id": generation_id, "wait_seconds": CALL_TIMEOUT_SECONDS},
                                    progress_callback=on_progress,
                                )
                        except Exception as exc:  # the killed replica's call: its connection goes
                            outcomes[index] = exc

                async with anyio.create_task_group() as group:
                    group.start_soon(wait_on, 0)
                    group.start_soon(wait_on, 1)
                    # Both waiters are in (each heard a first progress notification) and one replica holds the lease.
                    holder = None
                    while holder is None or not all(heard.values()):
                        await anyio.sleep(0.05)
                        rows = await query(
                            database, "SELECT holder FROM leases WHERE generation_id = $1", generation_id
                        )
                        holder = rows[0]["holder"] if rows else None
                    pid = int(holder.split("/")[1])
                    assert pid in pids, f"lease holder {holder} is none of the replicas {pids}"
                    doomed, survivor = pids[pid], 1 - pids[pid]
                    polls_before = status_requests(sandbox)
                    os.kill(pid, stop_signal)
                    stopped = pid
                    if stop_signal == signal.SIGKILL:
                        rs[doomed].process.wait(timeout=10)

                    # The survivor takes the lease over, then finishes.
                    while survivor not in outcomes:
                        rows = await query(
                            database, "SELECT holder FROM leases WHERE generation_id = $1", generation_id
                        )
                        if rows and rows[0]["holder"] not in holders_seen:
                            holders_seen.append(rows[0]["holder"])
                        await anyio.sleep(0.05)
                    scopes[doomed].cancel()  # that call can only end with a connection error: do not wait for it
                stats = sandbox.state.stats()
        finally:
            if stopped is not None and stop_signal == signal.SIGSTOP:
                os.kill(stopped, signal.SIGCONT)  # so that it can be stopped normally

    server_logs = logs(rs)
    result = outcomes[survivor]
    assert isinstance(result, CallToolResult), f"the survivor's wait ended with {result!r}\n{server_logs}"
    assert not result.is_error, text_of(result)
    content = structured(result)
    assert content["generation_id"] == generation_id
    assert content["status"] == "completed", f"{text_of(result)}\n{server_logs}"
    assert content["video_url"]
    assert stats["creates"] == 1, f"a second create was sent\n{server_logs}"
    # The survivor polled the upstream itself after the holder went, under a lease of its own.
    assert stats["status_requests"] > polls_before
    survivor_pid = rs[survivor].process.pid
    assert [int(seen.split("/")[1]) for seen in holders_seen] in ([pid, survivor_pid], [survivor_pid]), (
        holders_seen,
        server_logs,
    )


async def test_a_replica_whose_database_is_down_refuses_the_create_and_sends_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    port = free_port()  # nobody listens there
    secret = "hunter2-db-password"
    database = f"postgresql://pixverse:{secret}@127.0.0.1:{port}/pixverse"
    with replicas(1, sandbox, database, tmp_path) as rs:
        with anyio.fail_after(TEST_LIMIT_SECONDS):
            async with sdk_client(rs[0], token=TOKEN) as client:
                created = await client.call_tool("create_video", {"prompt": "a video that must not be paid"})
                blocking = await client.call_tool(
                    "generate_video_blocking", {"prompt": "nor this one", "timeout_seconds": 10}
                )
                listing = await client.call_tool("list_videos", {})

    for result in (created, blocking):
        assert result.is_error, text_of(result)
        content = structured(result)
        assert content["status"] == "not_created"
        assert content["generation_id"] is None
        message = text_of(result) + json.dumps(content)
        assert "database" in message.lower()
        assert f"127.0.0.1:{port}/pixverse" in message
        assert "Nothing was sent" in message, message
        assert secret not in message
    assert listing.is_error
    assert f"127.0.0.1:{port}" in text_of(listing)
    assert secret not in rs[0].log()
    assert sandbox.state.stats()["creates"] == 0
    assert sandbox.state.stats()["status_requests"] == 0
