"""Money across replicas on a real PostgreSQL that stops and comes back: a paid id is never lost (the spool keeps
it while the database is down and writes it when it is back), a follower keeps waiting by polling the API itself,
and a create whose answer was lost is settled by one replica and re-attached to (or created again) on another."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import replicas as shared_replicas
from tests.http_server import HttpServer, sdk_client
from tests.postgres_server import RunningPostgres
from tests.stdio_support import structured, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKEN = "replicas-money-token-5b1e9a2c77d04"
BUDGET = 25


@pytest.fixture
def own_postgres() -> Iterator[RunningPostgres]:
    """A PostgreSQL of this test's own: it is stopped and started again."""
    server = RunningPostgres.start()
    try:
        yield server
    finally:
        server.stop()


def replicas(count: int, sandbox: RunningSandbox, database_url: str, tmp_path: Path, **extra: str) -> Any:
    """`count` replicas sharing `database_url` (see `tests.conftest.replicas`), with this module's token and budget."""
    settings = {"PIXVERSE_MCP_WAIT_BUDGET_SECONDS": str(BUDGET), "PIXVERSE_MCP_LOG_LEVEL": "INFO", **extra}
    return shared_replicas(count, sandbox, database_url, tmp_path, token=TOKEN, **settings)


async def call(server: HttpServer, tool: str, arguments: dict[str, Any]) -> Any:
    async with sdk_client(server, token=TOKEN) as client:
        return await client.call_tool(tool, arguments)


async def test_an_answered_id_survives_a_database_stop_mid_create(
    own_postgres: RunningPostgres, tmp_path: Path
) -> None:
    with RunningSandbox(SandboxConfig(queued_seconds=0.5, generating_seconds=1.0)) as sandbox:
        sandbox.state.inject("slow", method="POST", seconds=2.0)
        with replicas(1, sandbox, own_postgres.new_database(), tmp_path) as (replica,):
            await call(replica, "list_videos", {})  # the schema exists before the outage
            async with anyio.create_task_group() as group:
                results: list[Any] = []

                async def create() -> None:
                    results.append(await call(replica, "create_video", {"prompt": "made while the database fell"}))

                group.start_soon(create)
                await anyio.sleep(0.8)  # claimed, and the create is out
                await anyio.to_thread.run_sync(own_postgres.halt)
            [result] = results
            generation_id = structured(result)["generation_id"]
            assert generation_id in sandbox.state.generations, text_of(result)
            assert "spool" in str(structured(result)["journal_error"]), text_of(result)
            assert "Nothing was sent" not in text_of(result)
            await anyio.to_thread.run_sync(own_postgres.resume)
            listed: list[str] = []
            with anyio.fail_after(30):
                while generation_id not in listed:
                    await anyio.sleep(0.5)
                    listing = structured(await call(replica, "list_videos", {}))
                    listed = [video["generation_id"] for video in listing.get("videos", [])]
        assert sandbox.state.stats()["accepted"] == 1


async def test_a_follower_polls_the_api_itself_while_the_database_is_down(
    own_postgres: RunningPostgres, tmp_path: Path
) -> None:
    with (
        RunningSandbox(SandboxConfig(queued_seconds=1, generating_seconds=8)) as sandbox,
        replicas(2, sandbox, own_postgres.new_database(), tmp_path) as (first, second),
    ):
        started = await call(first, "create_video", {"prompt": "followed through an outage"})
        generation_id = structured(started)["generation_id"]
        async with anyio.create_task_group() as group:
            waited: list[Any] = []

            async def hold_the_lease() -> None:
                await call(first, "get_video_status", {"generation_id": generation_id, "wait_seconds": BUDGET})

            async def follow() -> None:
                began = time.monotonic()
                waited.append(
                    (
                        await call(
                            second, "get_video_status", {"generation_id": generation_id, "wait_seconds": BUDGET}
                        ),
                        time.monotonic() - began,
                    )
                )

            group.start_soon(hold_the_lease)
            await anyio.sleep(1.0)
            group.start_soon(follow)
            await anyio.sleep(2.0)
            await anyio.to_thread.run_sync(own_postgres.halt)
        [(result, took)] = waited
        await anyio.to_thread.run_sync(own_postgres.resume)
    assert structured(result)["status"] == "completed", text_of(result)
    assert took <= BUDGET + 5


async def test_a_lost_answer_is_settled_once_and_reattached_on_another_replica(
    own_postgres: RunningPostgres, tmp_path: Path
) -> None:
    with RunningSandbox(SandboxConfig(queued_seconds=0.5, generating_seconds=1.0, logs_delay_seconds=1.0)) as sandbox:
        sandbox.state.inject("accepted_reset", method="POST")
        with replicas(2, sandbox, own_postgres.new_database(), tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE="0.05") as (
            first,
            second,
        ):
            arguments = {"prompt": "the answer was lost on the way back"}
            lost = await call(first, "create_video", arguments)
            again = await call(second, "generate_video_blocking", arguments)

        assert sandbox.state.stats()["accepted"] == 1
        assert sandbox.state.stats()["creates"] == 1
    assert structured(lost)["status"] == "unknown"
    assert structured(again)["status"] == "completed", text_of(again)


async def test_a_create_never_received_is_created_again_on_another_replica(
    own_postgres: RunningPostgres, tmp_path: Path
) -> None:
    with RunningSandbox(SandboxConfig(queued_seconds=0.5, generating_seconds=1.0, logs_delay_seconds=0.5)) as sandbox:
        sandbox.state.inject("reset", method="POST")
        settle = {"PIXVERSE_MCP_SETTLE_SECONDS": "3", "PIXVERSE_MCP_POLL_TIME_SCALE": "0.05"}
        with replicas(2, sandbox, own_postgres.new_database(), tmp_path, **settle) as (first, second):
            arguments = {"prompt": "the request never arrived"}
            lost = await call(first, "create_video", arguments)
            await anyio.sleep(4)
            again = await call(second, "generate_video_blocking", arguments)
            listing = structured(await call(second, "list_videos", {}))

        assert sandbox.state.stats()["accepted"] == 1
    assert structured(lost)["status"] == "unknown"
    assert structured(again)["status"] == "completed", text_of(again)
    assert [create["state"] for create in listing["uncertain_creates"]] == ["never_received"]
