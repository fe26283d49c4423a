"""The journal, through the tools in process: every generation the server started is listed (newest first) and
readable as a resource; a long journal listing still makes a small result (issue 8). (That a generation outlives a
killed server is tests/e2e/test_journal_stdio.py's: it needs a process to kill.)
"""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp_types import TextResourceContents

from pixverse_mcp.sandbox import SandboxConfig
from tests.stdio_support import HOST_READ_TIMEOUT_SECONDS, call, structured, text_of

pytestmark = pytest.mark.anyio

# Videos take 0.6 s: a poll sees them generating, and many are made quickly.
SANDBOX = SandboxConfig(queued_seconds=0.2, generating_seconds=0.4)
CLIENT_OPTIONS = {"read_timeout_seconds": HOST_READ_TIMEOUT_SECONDS}


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
