"""One poller per generation across processes, in process: two apps on one SQLite journal stand for two processes
(each its own client, storage connection and lease-holder name). The follower hears the holder through the
journal; a holder that stops renewing, a holder of this machine that is gone, a lease taken away and a journal that
cannot be read all end with this process polling the API itself, and the wait still ends with the video."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from pixverse_mcp.app import App, open_app
from pixverse_mcp.client import WaitUpdate
from pixverse_mcp.config import Settings
from pixverse_mcp.models import GenerationStatus, VideoRequest
from pixverse_mcp.polling import Expectation
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox, SandboxConfig
from pixverse_mcp.storage import StorageError
from pixverse_mcp.watch import Watch, Watcher

pytestmark = pytest.mark.anyio

SANDBOX = SandboxConfig(queued_seconds=0.2, generating_seconds=1.0)
# Short leases, so that taking over from a holder that stopped renewing is a matter of a second.
LEASE_SECONDS = 0.6
WAIT_SECONDS = 20.0
ELSEWHERE = "another-host/1/holder"


def settings_for(sandbox: RunningSandbox, state_dir: Path, lease_seconds: float) -> Settings:
    return Settings(
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=sandbox.url,
        state_dir=state_dir,
        output_dir=state_dir / "videos",
        poll_time_scale=0.03,
        lease_seconds=lease_seconds,
        log_level="WARNING",
    )


@asynccontextmanager
async def processes(
    sandbox: RunningSandbox, tmp_path: Path, count: int, *, lease_seconds: float = LEASE_SECONDS
) -> AsyncIterator[list[App]]:
    """`count` apps sharing one journal, as separate processes would."""
    settings = settings_for(sandbox, tmp_path, lease_seconds)
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            yield [await stack.enter_async_context(open_app(settings)) for _ in range(count)]


async def new_generation(app: App, prompt: str) -> str:
    """A generation made on the sandbox (not through a wait of ours: nobody polls it yet)."""
    generation = await app.require_service().client.create(VideoRequest(prompt=prompt))
    return generation.id


def watcher_of(app: App) -> Watcher:
    return app.require_service().watcher


async def watch_to_the_end(watcher: Watcher, generation_id: str) -> list[WaitUpdate]:
    """Every update of one wait, until it ends."""
    watch = Watch(generation_id, deadline=anyio.current_time() + WAIT_SECONDS, expectation=Expectation.around(1.0))
    seen: list[WaitUpdate] = []
    async with aclosing(watcher.updates(watch)) as updates:
        async for update in updates:
            seen.append(update)
    return seen


def final_status(seen: list[WaitUpdate]) -> GenerationStatus | None:
    heard = [update.generation for update in seen if update.generation is not None]
    return heard[-1].status if heard else None


def polled(seen: list[WaitUpdate]) -> int:
    """How many of these updates this watcher's own status requests brought."""
    return sum(update.polled for update in seen)


def a_pid_that_is_gone() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(process.stdout)


async def test_a_follower_hears_the_holder_through_the_journal_and_never_polls(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # A lease that outlasts the test: however slow this machine, the holder is never taken over here.
    async with processes(sandbox, tmp_path, 2, lease_seconds=60) as (holder, follower):
        generation_id = await new_generation(holder, "followed")
        results: dict[str, list[WaitUpdate]] = {}

        async def wait(name: str, app: App, delay: float) -> None:
            await anyio.sleep(delay)
            results[name] = await watch_to_the_end(watcher_of(app), generation_id)

        async with anyio.create_task_group() as group:
            group.start_soon(wait, "holder", holder, 0.0)
            group.start_soon(wait, "follower", follower, 0.1)  # the holder has the lease by then

    assert final_status(results["holder"]) is GenerationStatus.COMPLETED
    assert final_status(results["follower"]) is GenerationStatus.COMPLETED
    assert polled(results["holder"]) > 0
    assert polled(results["follower"]) == 0


async def test_a_holder_that_stops_renewing_is_taken_over(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with processes(sandbox, tmp_path, 1) as (app,):
        generation_id = await new_generation(app, "abandoned lease")
        # Another process took the lease and then went silent (it never polls nor renews).
        assert await app.storage.hold_lease(generation_id, ELSEWHERE, ttl_seconds=LEASE_SECONDS) is None

        seen = await watch_to_the_end(watcher_of(app), generation_id)

        assert final_status(seen) is GenerationStatus.COMPLETED
        assert polled(seen) > 0
        # The lease is released at the end: anyone may take it.
        assert await app.storage.hold_lease(generation_id, ELSEWHERE, ttl_seconds=LEASE_SECONDS) is None


async def test_a_holder_of_this_machine_that_is_gone_is_taken_over_at_once(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with processes(sandbox, tmp_path, 1) as (app,):
        generation_id = await new_generation(app, "dead holder")
        dead = f"{socket.gethostname()}/{a_pid_that_is_gone()}/gone"
        # A lease that would last an hour: only noticing the holder is gone ends this wait within its budget.
        assert await app.storage.hold_lease(generation_id, dead, ttl_seconds=3_600) is None

        seen = await watch_to_the_end(watcher_of(app), generation_id)

    assert final_status(seen) is GenerationStatus.COMPLETED
    assert polled(seen) > 0


async def test_a_holder_whose_lease_is_taken_follows_then_takes_it_back(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with processes(sandbox, tmp_path, 1) as (app,):
        watcher = watcher_of(app)
        generation_id = await new_generation(app, "lease taken away")
        original_keep = watcher._keep_lease
        taken: list[str] = []

        async def keep_once_taken_away(generation: str) -> bool:
            if not taken:
                # Another process replaces this one's lease (as if it had judged this one dead), then goes silent.
                taken.append(generation)
                holder = await app.storage.hold_lease(
                    generation, ELSEWHERE, ttl_seconds=LEASE_SECONDS, replacing=watcher.instance
                )
                assert holder is None
            return await original_keep(generation)

        watcher._keep_lease = keep_once_taken_away  # type: ignore[method-assign,assignment]
        seen = await watch_to_the_end(watcher, generation_id)

    assert taken == [generation_id]
    assert final_status(seen) is GenerationStatus.COMPLETED


async def test_a_follower_whose_journal_fails_polls_the_api_itself(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with processes(sandbox, tmp_path, 1) as (app,):
        generation_id = await new_generation(app, "journal gone")
        # A live holder elsewhere, for an hour: this process follows it...
        assert await app.storage.hold_lease(generation_id, ELSEWHERE, ttl_seconds=3_600) is None
        reads: list[str] = []
        original_get = app.storage.get

        async def get_then_fail(generation: str) -> Any:
            reads.append(generation)
            if len(reads) > 1:
                raise StorageError("the journal is unavailable")
            return await original_get(generation)

        # ...until the journal cannot be read (though its leases still can): then it asks the API itself.
        monkeypatch.setattr(app.storage, "get", get_then_fail)

        seen = await watch_to_the_end(watcher_of(app), generation_id)

    assert len(reads) >= 2
    assert final_status(seen) is GenerationStatus.COMPLETED
    assert polled(seen) > 0


def test_is_dead_here_judges_only_processes_of_this_machine() -> None:
    from pixverse_mcp.watch import is_dead_here

    here = socket.gethostname()
    assert is_dead_here(f"{here}/{a_pid_that_is_gone()}/x")
    assert not is_dead_here(f"{here}/{os.getpid()}/x")
    assert not is_dead_here(f"elsewhere/{a_pid_that_is_gone()}/x")
    assert not is_dead_here(f"{here}/not-a-pid/x")
