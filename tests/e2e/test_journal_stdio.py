"""The journal over stdio: every generation the server started is listed (newest first), readable as a resource,
and survives the server being killed mid-wait: a new server on the same state folder finishes it without paying
for it again. Also: a long journal listing still makes a small result (issue 8).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import TextResourceContents

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env, stdio_client
from tests.stdio_support import (
    HOST_READ_TIMEOUT_SECONDS,
    PROTOCOL_BOUND_SECONDS,
    RawStdioServer,
    call,
    creates,
    structured,
    text_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def client(shared_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    env = server_env(shared_sandbox, tmp_path_factory.mktemp("journal"))
    async with stdio_client(env, read_timeout_seconds=HOST_READ_TIMEOUT_SECONDS) as connected:
        yield connected


async def test_list_videos_shows_started_generations_newest_first_with_prompt_and_status(client: Client) -> None:
    prompts = [f"journal order {n}: a lantern on a pier at night" for n in range(3)]
    ids = [structured(await call(client, "create_video", {"prompt": prompt}))["generation_id"] for prompt in prompts]

    listing = await call(client, "list_videos", {"limit": 10})

    assert not listing.is_error, text_of(listing)
    videos = structured(listing)["videos"]
    assert [video["generation_id"] for video in videos[:3]] == ids[::-1]
    assert [video["prompt"] for video in videos[:3]] == prompts[::-1]
    for video in videos[:3]:
        assert video["status"] in ("queued", "generating", "completed")
        assert video["options"]["resolution"] == "720p"


async def test_the_generation_resource_holds_its_status_history(client: Client) -> None:
    result = await call(client, "generate_video_blocking", {"prompt": "a train crossing a stone viaduct"})
    data = structured(result)
    assert data["status"] == "completed"

    resource = await client.read_resource(f"pixverse://generations/{data['generation_id']}")

    assert len(resource.contents) == 1
    contents = resource.contents[0]
    assert isinstance(contents, TextResourceContents)
    assert contents.mime_type == "application/json"
    document = json.loads(contents.text)
    assert document["generation_id"] == data["generation_id"]
    assert document["status"] == "completed"
    assert document["video_url"] == data["video_url"]
    assert document["prompt"] == "a train crossing a stone viaduct"
    history = [change["status"] for change in document["status_history"]]
    assert history[0] == "queued"
    assert history[-1] == "completed"
    assert "generating" in history
    times = [change["at"] for change in document["status_history"]]
    assert times == sorted(times)


async def test_a_long_journal_listing_stays_under_one_megabyte(client: Client) -> None:
    for n in range(30):
        prompt = f"{n:02d} " + "a very long and detailed description of a mountain valley at sunrise. " * 28
        assert len(prompt) <= 2048
        created = await call(client, "create_video", {"prompt": prompt[:2000]})
        assert not created.is_error, text_of(created)

    listing = await call(client, "list_videos", {"limit": 100})  # `call` fails on a result of 1 MB or more

    assert not listing.is_error, text_of(listing)
    assert len(structured(listing)["videos"]) >= 30


async def test_a_generation_outlives_a_killed_server_and_a_new_one_finishes_it(tmp_path: Path) -> None:
    prompt = "a lighthouse keeper climbing the stairs"
    with RunningSandbox(SandboxConfig(queued_seconds=0.3, generating_seconds=3.0)) as sandbox:
        env = server_env(sandbox, tmp_path)

        # A first server starts a blocking call and is killed (SIGKILL: no chance to clean up) while it waits.
        async with RawStdioServer.start(env) as first:
            await first.initialize()
            await first.send_request(
                "tools/call",
                {
                    "name": "generate_video_blocking",
                    "arguments": {"prompt": prompt, "timeout_seconds": 60},
                    "_meta": {"progressToken": "killed"},
                },
            )
            await first.wait_for("a progress notification", lambda message: bool(first.progress("killed")))
            first.process.kill()
            with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
                await first.process.wait()
        assert creates(sandbox) == 1
        [generation_id] = sandbox.state.generations

        # A new server on the same state folder knows it, and finishes it.
        async with stdio_client(env, read_timeout_seconds=HOST_READ_TIMEOUT_SECONDS) as second:
            listing = await call(second, "list_videos", {})
            finished = await call(second, "get_video_status", {"generation_id": generation_id, "wait_seconds": 30})

        videos = structured(listing)["videos"]
        assert [video["generation_id"] for video in videos] == [generation_id]
        assert videos[0]["prompt"] == prompt
        assert videos[0]["status"] in ("queued", "generating")
        assert not finished.is_error, text_of(finished)
        assert structured(finished)["status"] == "completed"
        assert structured(finished)["video_url"]
        assert creates(sandbox) == 1, "the generation was paid for twice"
