"""The tools as an agent sees them: the real server in process (`build_server` over `open_app`) with the SDK's
`Client`, talking real HTTP to the sandbox. (tests/e2e/test_stdio_end_to_end.py makes one video over real stdio.)

Covers the published schemas (and a snapshot of them), the happy path, a failed generation, progress,
cancellation, saving to disk and a server without a key.

The snapshot `tests/snapshots/tool_schemas.json` holds what `tools/list` publishes (name, title, description,
inputSchema, outputSchema, annotations), so that a change to what agents see is always deliberate. After such a
change, rewrite it with:

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/test_tools.py -k snapshot

and review the diff of the JSON file like any other change.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import ResourceLink, Tool

from pixverse_mcp.app import App
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.sandbox import FAIL_MARKER, RunningSandbox, SandboxConfig
from tests.conftest import ServeFactory
from tests.stdio_support import (
    HOST_READ_TIMEOUT_SECONDS,
    PROTOCOL_BOUND_SECONDS,
    ProgressRecorder,
    assert_no_traceback,
    call,
    creates,
    strictly_increasing,
    structured,
    text_of,
)

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "tool_schemas.json"
SNAPSHOT_KEYS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
TOOL_NAMES = {"create_video", "get_video_status", "generate_video_blocking", "list_videos"}
VIDEO_TOOLS = ("create_video", "get_video_status", "generate_video_blocking")
CREATE_TOOLS = ("create_video", "generate_video_blocking")
ASPECT_RATIOS = ["16:9", "4:3", "1:1", "3:4", "9:16"]
RESOLUTIONS = ["360p", "540p", "720p", "1080p"]
STYLES = ["anime", "3d_animation", "clay", "comic", "cyberpunk"]
MAX_SEED = 2_147_483_647
# What the sandbox's create response reports in meta.usage for one 5 s 720p clip.
SANDBOX_USAGE_5S_720P = {"tokens_used": 840_000}
PROGRESS_MESSAGE = re.compile(
    r"^((queued|generating|unknown|waiting for the first status), \d+ s elapsed, "
    r"(about \d+ s left|taking longer than the usual \d+ s)"
    r"|(completed|failed) after \d+ s)$"
)
NEVER_COMPLETES = "[sandbox:fault=never_completes]"
STATUS_ORDER = ("queued", "generating", "completed")
# Videos take 0.6 s: long enough for a poll to see each status, short enough to make many of them.
SANDBOX = SandboxConfig(queued_seconds=0.2, generating_seconds=0.4)
# One server for the tests of this module that do not need settings of their own (`client`, `app`).
CLIENT_OPTIONS = {"read_timeout_seconds": HOST_READ_TIMEOUT_SECONDS}


async def published_tools(client: Client) -> dict[str, Tool]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


def option_with(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """The schema itself, or its `anyOf` branch, that carries `key` (an optional value is `anyOf [..., null]`)."""
    for option in (schema, *schema.get("anyOf", [])):
        if isinstance(option, dict) and key in option:
            return option
    raise AssertionError(f"no {key!r} in {schema}")


def snapshot_of(tools: dict[str, Tool]) -> list[dict[str, Any]]:
    """What agents see of each tool, in a stable order."""
    dumped = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools.values()]
    return sorted(({key: tool.get(key) for key in SNAPSHOT_KEYS} for tool in dumped), key=lambda tool: tool["name"])


# --- schemas -----------------------------------------------------------------------------------------------------


async def test_video_parameters_publish_inline_enums_defaults_and_bounds(client: Client) -> None:
    tools = await published_tools(client)
    assert set(tools) >= TOOL_NAMES

    for name in CREATE_TOOLS:
        schema = tools[name].input_schema
        assert "$ref" not in json.dumps(schema), f"{name}: every allowed value must be inline, not behind a $ref"
        assert schema["required"] == ["prompt"]
        properties = schema["properties"]
        assert properties["prompt"]["type"] == "string"
        assert properties["prompt"]["minLength"] == 1
        assert properties["prompt"]["maxLength"] == 2048
        assert option_with(properties["aspect_ratio"], "enum")["enum"] == ASPECT_RATIOS
        assert properties["aspect_ratio"]["default"] is None  # unset: 16:9 for text, the image's shape with one
        assert properties["resolution"]["enum"] == RESOLUTIONS
        assert properties["resolution"]["default"] == "720p"
        # An integer enum, as one-value ranges (Gemini's enum holds strings only; see arguments.portable_schema).
        durations = (5, 8, 10)  # 10 on v5.5 only, checked before anything is sent
        assert properties["duration"]["anyOf"] == [{"type": "integer", "minimum": v, "maximum": v} for v in durations]
        assert properties["duration"]["type"] == "integer"
        assert properties["duration"]["default"] == 5
        assert option_with(properties["style"], "enum")["enum"] == STYLES
        assert "default" in properties["style"]
        assert properties["style"]["default"] is None
        seed = option_with(properties["seed"], "maximum")
        assert seed["type"] == "integer"
        assert (seed["minimum"], seed["maximum"]) == (0, MAX_SEED)
        assert option_with(properties["negative_prompt"], "maxLength")["maxLength"] == 2048
        for parameter in properties.values():
            assert parameter.get("description"), f"{name}: every parameter is described for the agent"


async def test_wait_and_list_parameters_publish_their_bounds_and_defaults(client: Client) -> None:
    tools = await published_tools(client)

    blocking = tools["generate_video_blocking"].input_schema["properties"]
    timeout = option_with(blocking["timeout_seconds"], "maximum")
    assert (timeout["minimum"], timeout["maximum"]) == (1, 600)
    assert blocking["force_new"]["type"] == "boolean"
    assert blocking["force_new"]["default"] is False
    assert "save_to_disk" in blocking

    status = tools["get_video_status"].input_schema
    assert status["required"] == ["generation_id"]
    assert status["properties"]["generation_id"]["minLength"] == 1
    wait = status["properties"]["wait_seconds"]
    assert (wait["minimum"], wait["maximum"], wait["default"]) == (0, 600, 0)

    listing = tools["list_videos"].input_schema
    assert "$ref" not in json.dumps(listing)
    limit = listing["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)
    assert option_with(listing["properties"]["status"], "enum")["enum"] == [
        "queued",
        "generating",
        "completed",
        "failed",
        "unknown",
    ]


async def test_every_tool_has_a_title_an_output_schema_and_annotations(client: Client) -> None:
    tools = await published_tools(client)

    for name, tool in tools.items():
        assert tool.title, f"{name} has no title"
        assert tool.description, f"{name} has no description"
        assert tool.output_schema is not None, f"{name} has no outputSchema"
        assert tool.output_schema["type"] == "object"
        assert tool.annotations is not None, f"{name} has no annotations"
    for name in VIDEO_TOOLS:
        properties = tools[name].output_schema["properties"]  # type: ignore[index]
        assert {"generation_id", "status", "done", "video_url", "error", "usage", "next_step"} <= set(properties)
        assert {"elapsed_seconds", "estimated_seconds_remaining", "reattached", "local_path", "file_size_bytes"} <= set(
            properties
        )
        assert tools[name].annotations.open_world_hint is True  # type: ignore[union-attr]
    assert "videos" in tools["list_videos"].output_schema["properties"]  # type: ignore[index]

    annotations = {name: tool.annotations for name, tool in tools.items()}
    assert annotations["get_video_status"].read_only_hint is False  # type: ignore[union-attr]  # it journals and saves
    assert annotations["list_videos"].read_only_hint is True  # type: ignore[union-attr]
    assert annotations["create_video"].read_only_hint is False  # type: ignore[union-attr]
    assert annotations["generate_video_blocking"].read_only_hint is False  # type: ignore[union-attr]
    assert annotations["create_video"].idempotent_hint is False  # type: ignore[union-attr]
    assert annotations["generate_video_blocking"].idempotent_hint is False  # type: ignore[union-attr]


async def test_published_tools_match_the_snapshot(client: Client) -> None:
    """Rewrite the snapshot with UPDATE_SNAPSHOTS=1 after a deliberate change (see the module docstring)."""
    current = snapshot_of(await published_tools(client))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert SNAPSHOT.is_file(), f"{SNAPSHOT} is missing: create it with UPDATE_SNAPSHOTS=1"
    expected = json.loads(SNAPSHOT.read_text())
    assert [tool["name"] for tool in current] == [tool["name"] for tool in expected]
    for now, before in zip(current, expected, strict=True):
        assert now == before, (
            f"tool {now['name']!r} differs from {SNAPSHOT.name}: if the change is deliberate, rerun with "
            "UPDATE_SNAPSHOTS=1 and review the diff"
        )


# --- generation ----------------------------------------------------------------------------------------------------


async def test_blocking_generation_returns_the_video_url_and_a_resource_link(
    client: Client, shared_sandbox: RunningSandbox
) -> None:
    before = creates(shared_sandbox)

    result = await call(client, "generate_video_blocking", {"prompt": "a red fox running through fresh snow"})

    assert not result.is_error, text_of(result)
    data = structured(result)
    assert data["status"] == "completed"
    assert data["done"] is True
    assert data["video_url"].startswith(f"{shared_sandbox.url}/_sandbox/videos/")
    assert data["generation_id"] in shared_sandbox.state.generations
    assert data["error"] is None
    links = [block for block in result.content if isinstance(block, ResourceLink)]
    assert len(links) == 1
    assert str(links[0].uri) == data["video_url"]
    assert links[0].mime_type == "video/mp4"
    assert data["video_url"] in text_of(result)
    assert creates(shared_sandbox) - before == 1


async def test_blocking_generation_reports_the_usage_from_the_create_response(
    client: Client, shared_sandbox: RunningSandbox
) -> None:
    result = await call(client, "generate_video_blocking", {"prompt": "a paper boat drifting down a rainy street"})

    data = structured(result)
    assert data["status"] == "completed"
    # The status responses carry no meta.usage: the figure comes from the create response and must survive.
    assert data["usage"] == SANDBOX_USAGE_5S_720P


async def test_failed_generation_is_a_tool_error_with_the_id_and_the_reason(
    client: Client, shared_sandbox: RunningSandbox
) -> None:
    result = await call(client, "generate_video_blocking", {"prompt": f"a storm over the sea {FAIL_MARKER}"})

    assert result.is_error is True
    data = structured(result)
    generation_id = data["generation_id"]
    assert generation_id in shared_sandbox.state.generations
    assert data["status"] == "failed"
    assert data["done"] is True
    assert data["error"]
    assert data["video_url"] is None
    text = text_of(result)
    assert generation_id in text
    assert data["error"] in text
    assert_no_traceback(text)


# --- progress and cancellation -------------------------------------------------------------------------------------


async def test_blocking_call_reports_readable_increasing_progress_at_each_status(client: Client) -> None:
    recorder = ProgressRecorder()

    result = await call(
        client, "generate_video_blocking", {"prompt": "a hot air balloon at dawn"}, progress_callback=recorder
    )

    assert structured(result)["status"] == "completed"
    messages = recorder.messages
    assert messages, "no progress notification"
    for message in messages:
        assert PROGRESS_MESSAGE.match(message), f"unreadable progress message: {message!r}"
    # Every status the generation went through is visible, in order.
    for status in STATUS_ORDER:
        assert any(message.startswith(status) for message in messages), f"{status} was not reported: {messages}"
    firsts = [next(i for i, message in enumerate(messages) if message.startswith(status)) for status in STATUS_ORDER]
    assert firsts == sorted(firsts), f"statuses reported out of order: {messages}"
    values = [event.progress for event in recorder.events]
    assert strictly_increasing(values), f"progress not increasing: {values}"
    # While within the usual time, a total says how far along it is.
    expected = recorder.events[0].total
    assert expected is not None
    assert expected > 0
    for event in recorder.events:
        if event.progress < expected:
            assert event.total == expected, f"no total while within the expected time: {event}"
        if event.total is not None:
            assert event.progress <= event.total


async def test_cancelling_a_blocking_call_stops_polling_and_keeps_the_generation(
    client: Client, app: App, shared_sandbox: RunningSandbox
) -> None:
    prompt = f"a clock that never stops ticking {NEVER_COMPLETES}"
    recorder = ProgressRecorder()
    finished: list[object] = []

    async def blocking_call() -> None:
        finished.append(
            await client.call_tool(
                "generate_video_blocking", {"prompt": prompt, "timeout_seconds": 120}, progress_callback=recorder
            )
        )

    async with anyio.create_task_group() as group:
        group.start_soon(blocking_call)
        with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
            await recorder.first.wait()
        group.cancel_scope.cancel()
    assert not finished, "the call ended by itself instead of being cancelled"

    # Polling stops at once: give the cancel a moment to arrive, then no status request may follow for five of the
    # longest intervals the schedule ever waits between two looks.
    longest_interval = PollingPolicy().max_interval_seconds * app.settings.poll_time_scale
    await anyio.sleep(2 * longest_interval)
    polled = shared_sandbox.state.stats()["status_requests"]
    await anyio.sleep(5 * longest_interval)
    assert shared_sandbox.state.stats()["status_requests"] == polled, "the server kept polling after the cancel"

    # The server still answers, and the paid generation is in the journal.
    listing = await call(client, "list_videos", {"limit": 5})
    assert not listing.is_error, text_of(listing)
    mine = [video for video in structured(listing)["videos"] if video["prompt"] == prompt]
    assert len(mine) == 1
    assert mine[0]["generation_id"] in shared_sandbox.state.generations
    assert mine[0]["status"] in ("queued", "generating")


# --- saving to disk ------------------------------------------------------------------------------------------------


def assert_only_videos_in(directory: Path, video: Path) -> None:
    """The folder holds the finished video (with the others this module saved) and no partial or temporary file."""
    names = sorted(path.name for path in directory.iterdir())
    assert video.name in names
    assert all(name.startswith("pixverse-") and name.endswith(".mp4") for name in names), names


def assert_is_our_mp4(path: Path, size: int, prompt: str) -> None:
    assert path.is_file()
    assert path.stat().st_size == size
    assert path.read_bytes()[4:8] == b"ftyp", "not an MP4 (no ftyp box first)"
    assert path.name.startswith("pixverse-")
    assert path.suffix == ".mp4"
    for word in prompt.split():
        if len(word) >= 4:
            assert word.lower() not in path.name.lower(), f"the file name carries prompt text: {path.name}"


async def test_save_to_disk_writes_the_video_into_the_users_videos_folder(client: Client) -> None:
    prompt = "lanterns floating over a quiet lake"

    result = await call(client, "generate_video_blocking", {"prompt": prompt, "save_to_disk": True})

    data = structured(result)
    assert data["status"] == "completed"
    assert data["save_error"] is None
    saved = Path(data["local_path"])
    videos = Path(os.environ["XDG_VIDEOS_DIR"]) / "pixverse"  # the user's videos folder (conftest: a temporary one)
    assert saved.parent == videos
    assert_is_our_mp4(saved, data["file_size_bytes"], prompt)
    assert_only_videos_in(videos, saved)


async def test_output_dir_setting_saves_every_finished_video_there(
    shared_sandbox: RunningSandbox, serve: ServeFactory, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    prompt = "a hummingbird hovering over a red flower"
    async with serve(shared_sandbox, output_dir=output) as served:
        result = await call(served.client, "generate_video_blocking", {"prompt": prompt})

    data = structured(result)
    assert data["status"] == "completed"
    saved = Path(data["local_path"])
    assert saved.parent == output
    assert_is_our_mp4(saved, data["file_size_bytes"], prompt)
    assert_only_videos_in(output, saved)
    assert not (tmp_path / "state" / "videos").exists()


async def test_a_video_over_the_download_cap_is_not_saved_but_still_returned(
    shared_sandbox: RunningSandbox, serve: ServeFactory, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    async with serve(shared_sandbox, output_dir=output, max_download_mb=0.001) as served:
        result = await call(
            served.client, "generate_video_blocking", {"prompt": "a snail crossing a garden path", "save_to_disk": True}
        )

    assert not result.is_error, text_of(result)
    data = structured(result)
    assert data["status"] == "completed"
    assert data["video_url"]
    assert data["save_error"]
    assert data["local_path"] is None
    assert data["file_size_bytes"] is None
    assert_no_traceback(data["save_error"])
    files = [path for path in output.rglob("*") if path.is_file()] if output.exists() else []
    assert files == [], f"nothing may be written over the cap: {files}"


# --- no API key ----------------------------------------------------------------------------------------------------

VALID_ARGUMENTS: dict[str, dict[str, Any]] = {
    "create_video": {"prompt": "a red fox running through snow"},
    "generate_video_blocking": {"prompt": "a red fox running through snow"},
    "get_video_status": {"generation_id": "00000000-0000-0000-0000-000000000000:pixverse/v5/text-to-video"},
}


async def test_without_a_key_the_server_starts_and_every_video_tool_says_how_to_set_it(serve: ServeFactory) -> None:
    async with serve(None) as served:
        client = served.client
        assert set(await published_tools(client)) >= TOOL_NAMES
        results = {name: await call(client, name, arguments) for name, arguments in VALID_ARGUMENTS.items()}
        listing = await call(client, "list_videos", {})

    for name, result in results.items():
        assert result.is_error is True, name
        text = text_of(result)
        assert "AIMLAPI_API_KEY" in text, f"{name}: {text}"
        assert "environment variable" in text, f"{name} does not say how to set the key: {text}"
        assert_no_traceback(text)
    assert not listing.is_error, text_of(listing)
    assert structured(listing)["videos"] == []
