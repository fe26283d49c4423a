"""The expected time to ready is learnt from the journal, which every process sharing the state (and every replica
sharing a PostgreSQL) writes: a process that has never waited on a video knows how fast the upstream is now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from pixverse_mcp.app import open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.models import VideoRequest
from pixverse_mcp.polling import expected_generation_seconds
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox
from tests.conftest import generate, outcome_of

pytestmark = pytest.mark.anyio

TIME_SCALE = 0.01
SLOWER = 2.0  # the upstream runs at twice the documented times


def _settings(sandbox: RunningSandbox, state: Path) -> Settings:
    return Settings(
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=sandbox.url,
        state_dir=state,
        poll_time_scale=TIME_SCALE,
        log_level="WARNING",
    )


def _twice_the_table(body: dict[str, Any]) -> tuple[float, float]:
    total = SLOWER * expected_generation_seconds(body["resolution"], body["duration"]) * TIME_SCALE
    return 0.1 * total, 0.9 * total


async def test_a_fresh_process_expects_the_speed_another_process_has_seen(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.state.config.timings = _twice_the_table
    async with open_app(_settings(sandbox, tmp_path)) as first:
        service = first.require_service()

        async def make(index: int) -> None:
            await generate(service, VideoRequest(prompt=f"slow day {index}"), timeout=30)

        async with anyio.create_task_group() as group:
            for index in range(12):
                group.start_soon(make, index)

    table_720p = expected_generation_seconds("720p", 5) * TIME_SCALE
    table_1080p = expected_generation_seconds("1080p", 5) * TIME_SCALE
    async with open_app(_settings(sandbox, tmp_path)) as second:
        learnt = await second.require_service().expectations.of({"resolution": "720p", "duration": 5})
        borrowed = await second.require_service().expectations.of({"resolution": "1080p", "duration": 5})

    # Seen: about twice the table (the noticing lag adds a little); the table's own window would end at 1.3x.
    assert 1.8 * table_720p <= learnt.typical <= 2.4 * table_720p
    assert learnt.early > 1.3 * table_720p
    # 1080p has no history: it borrows 720p's slowdown, as a multiple of its own table figure.
    assert 1.8 * table_1080p <= borrowed.typical <= 2.4 * table_1080p


async def test_the_schedule_counts_from_the_create_answer_the_journal_learns_from(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # A protocol task's wait, or a busy journal, starts some time after the create answered. The schedule must
    # count from the answer (the origin of every learnt ready time), or every look lands that much later.
    async with open_app(_settings(sandbox, tmp_path)) as app:
        service = app.require_service()
        prepared = await service.prepare(VideoRequest(prompt="a wait that starts late"))
        started = await service.start(prepared)
        entry = await app.storage.get(started.generation.id)
        assert entry is not None
        assert entry.created_at == started.created_at
        assert started.fresh
        again = await service.start(prepared)  # re-attached: its age comes from the journal
        assert again.reattached
        assert not again.fresh
        assert again.created_at == started.created_at

        origins: list[float] = []
        watch = service.client.watch

        def spy(generation_id: str, **options: Any) -> Any:
            origins.append(options["elapsed_before"])
            return watch(generation_id, **options)

        service.client.watch = spy  # type: ignore[method-assign]
        await anyio.sleep(0.2)
        await outcome_of(service.wait(started, timeout=30))
    assert origins[0] >= 0.2
