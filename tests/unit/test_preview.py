"""Keyframe previews through the SDK's `Client` on the real server in process: what a multimodal agent sees of its
video."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import ImageContent
from PIL import Image

from pixverse_mcp.preview import MAX_PREVIEW_BYTES
from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import ServeFactory

pytestmark = pytest.mark.anyio

# Videos take 0.4 s here.
SANDBOX = SandboxConfig(queued_seconds=0.1, generating_seconds=0.3)


def _only_image(content: list[object]) -> Image.Image:
    images = [item for item in content if isinstance(item, ImageContent)]
    assert len(images) == 1
    assert images[0].mime_type == "image/png"
    png = base64.b64decode(images[0].data)
    assert len(png) <= MAX_PREVIEW_BYTES
    return Image.open(io.BytesIO(png))


async def test_preview_video_returns_a_contact_sheet_of_distinct_keyframes(client: Client) -> None:
    done = await client.call_tool("generate_video_blocking", {"prompt": "a red kite over a beach"})
    generation_id = done.structured_content["generation_id"]  # type: ignore[index]

    preview = await client.call_tool("preview_video", {"generation_id": generation_id, "frames": 4})

    assert not preview.is_error
    sheet = _only_image(preview.content)
    assert sheet.size == (preview.structured_content["width"], preview.structured_content["height"])  # type: ignore[index]
    assert preview.structured_content["frames"] == 4  # type: ignore[index]
    timestamps = preview.structured_content["timestamps"]  # type: ignore[index]
    assert timestamps == sorted(timestamps)
    assert len(set(timestamps)) == 4
    tiles = [
        sheet.crop((x, y, x + sheet.width // 2, y + sheet.height // 2)).tobytes()
        for y in (0, sheet.height // 2)
        for x in (0, sheet.width // 2)
    ]
    assert len(set(tiles)) == 4  # four different moments of the clip


async def test_the_blocking_tool_adds_the_preview_when_asked(client: Client) -> None:
    result = await client.call_tool("generate_video_blocking", {"prompt": "a dune buggy", "preview": True})

    assert not result.is_error
    assert result.structured_content["status"] == "completed"  # type: ignore[index]
    _only_image(result.content)


async def test_a_saved_file_can_be_previewed_but_nothing_outside_the_videos_folder(client: Client) -> None:
    saved = await client.call_tool("generate_video_blocking", {"prompt": "a tram", "save_to_disk": True})
    local_path = saved.structured_content["local_path"]  # type: ignore[index]

    inside = await client.call_tool("preview_video", {"path": local_path, "frames": 2})
    outside = await client.call_tool("preview_video", {"path": str(Path(__file__))})

    assert not inside.is_error
    _only_image(inside.content)
    assert outside.is_error
    assert "inside" in outside.content[0].text  # type: ignore[union-attr]


async def test_without_the_extra_the_tool_says_how_to_install_it(
    sandbox: RunningSandbox, serve: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now fails, as without the extra

    async with serve(sandbox) as served:
        result = await served.client.call_tool("preview_video", {"generation_id": "any"})
        blocking = await served.client.call_tool("generate_video_blocking", {"prompt": "a tram", "preview": True})

    assert result.is_error
    assert "pip install 'aimlapi-pixverse-mcp[preview]'" in result.content[0].text  # type: ignore[union-attr]
    assert sandbox.state.stats()["status_requests"] > 0  # the blocking call still worked ...
    assert not blocking.is_error
    assert any(
        "aimlapi-pixverse-mcp[preview]" in getattr(item, "text", "") for item in blocking.content
    )  # ... and said why
