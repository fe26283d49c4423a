"""The whole PixVerse family over real transports (stdio and Streamable HTTP), through the SDK's own client offering
its roots: a video from a local PNG inside a root and from an https URL, a transition, v5.5 at 10 s with sound,
lip-sync text on v5, and `lip_sync_video` on a video just made. Each body the sandbox received is checked against
the model's documented fields (the sandbox itself refuses any field a model does not take), each result against its
outputSchema (conftest); and unsafe inputs and impossible combinations are refused with nothing sent."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from PIL import Image

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env, stdio_client
from tests.http_server import STATEFUL, sdk_client, served
from tests.stdio_support import structured, text_of

pytestmark = pytest.mark.anyio

TRANSPORTS = ["stdio", "streamable-http"]
DOCUMENTED: dict[str, set[str]] = {
    "pixverse/v5/text-to-video": {"aspect_ratio", "lip_sync_tts_content", "lip_sync_tts_speaker"},
    "pixverse/v5/image-to-video": {"image_url", "lip_sync_tts_content", "lip_sync_tts_speaker"},
    "pixverse/v5/transition": {"image_url", "tail_image_url", "lip_sync_tts_content", "lip_sync_tts_speaker"},
    "pixverse/v5.5/text-to-video": {"aspect_ratio", "generate_audio_switch", "generate_multi_clip_switch"}
    | {"thinking_type"},
    "pixverse/v5.5/image-to-video": {"image_url", "generate_audio_switch", "generate_multi_clip_switch"}
    | {"thinking_type"},
}
COMMON = {"model", "prompt", "resolution", "duration", "negative_prompt", "style", "seed"}
LIP_SYNC = {"model", "video_url", "audio_url", "lip_sync_tts_content", "lip_sync_tts_speaker"}
# The module's sandbox (`shared_sandbox`).
SANDBOX = SandboxConfig(queued_seconds=0.2, generating_seconds=0.6)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A client root with two real PNG frames, a text file named like one, and a folder outside every root."""
    root = tmp_path_factory.mktemp("client-root")
    outside = tmp_path_factory.mktemp("elsewhere")
    Image.new("RGB", (32, 18), (200, 80, 40)).save(root / "first.png")
    Image.new("RGB", (32, 18), (40, 80, 200)).save(root / "last.png")
    Image.new("RGB", (32, 18), (0, 0, 0)).save(outside / "secret.png")
    (root / "notes.png").write_text("not an image at all")
    (root / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (50 * 1024 * 1024))
    os.symlink(outside / "secret.png", root / "link.png")
    return {"root": root, "outside": outside}


def offering(root: Path) -> Any:
    async def list_roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=root.as_uri(), name="project")])  # type: ignore[arg-type]

    return list_roots


@asynccontextmanager
async def connected(transport: str, sandbox: RunningSandbox, tmp: Path, root: Path) -> AsyncIterator[Client]:
    env = server_env(sandbox, tmp, PIXVERSE_MCP_LOG_LEVEL="WARNING")
    if transport == "stdio":
        async with stdio_client(env, list_roots_callback=offering(root)) as client:
            yield client
    else:
        with served(env, tmp / "logs", STATEFUL) as server:
            async with sdk_client(server, token=None, list_roots_callback=offering(root)) as client:
                yield client


def body_of(sandbox: RunningSandbox, result: types.CallToolResult) -> dict[str, Any]:
    generation_id = structured(result)["generation_id"]
    assert generation_id is not None, text_of(result)
    body: dict[str, Any] = sandbox.state.generations[generation_id].body
    return body


def assert_documented(body: dict[str, Any]) -> None:
    model = body["model"]
    allowed = LIP_SYNC if model == "pixverse/lip-sync" else COMMON | DOCUMENTED[model]
    assert set(body) <= allowed, f"{model} got {set(body) - allowed}"


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_model_gets_the_body_its_table_documents(
    transport: str, shared_sandbox: RunningSandbox, folders: dict[str, Path], tmp_path: Path
) -> None:
    root = folders["root"]
    made: dict[str, types.CallToolResult] = {}
    async with connected(transport, shared_sandbox, tmp_path, root) as client:
        for name, arguments in {
            "local image": {"prompt": f"the fox wakes ({transport})", "image": str(root / "first.png")},
            "image url": {"prompt": f"the fox runs ({transport})", "image": "https://example.com/first.png"},
            "transition": {
                "prompt": f"day to night ({transport})",
                "image": "https://example.com/day.png",
                "last_frame": str(root / "last.png"),
            },
            "v5.5 with sound": {
                "prompt": f"waves at dusk ({transport})",
                "model_version": "v5.5",
                "duration": 10,
                "generate_audio": True,
            },
            "spoken on v5": {
                "prompt": f"a lighthouse keeper ({transport})",
                "lip_sync_text": "The light is on.",
                "lip_sync_voice": "Oliver",
            },
        }.items():
            made[name] = await client.call_tool("generate_video_blocking", arguments)
            assert structured(made[name])["status"] == "completed", (name, text_of(made[name]))
        first_video = structured(made["local image"])["generation_id"]
        spoken = await client.call_tool(
            "lip_sync_video", {"video": first_video, "lip_sync_text": "Good morning.", "lip_sync_voice": "Ava"}
        )
        listing = structured(await client.call_tool("list_videos", {"limit": 10}))

    bodies = {name: body_of(shared_sandbox, result) for name, result in made.items()}
    for body in bodies.values():
        assert_documented(body)
    assert bodies["local image"]["model"] == "pixverse/v5/image-to-video"
    assert bodies["local image"]["image_url"] == png_data_uri(root / "first.png")
    assert "aspect_ratio" not in bodies["local image"]
    assert bodies["image url"]["image_url"] == "https://example.com/first.png"
    assert bodies["transition"]["model"] == "pixverse/v5/transition"
    assert bodies["transition"]["tail_image_url"] == png_data_uri(root / "last.png")
    assert bodies["v5.5 with sound"]["model"] == "pixverse/v5.5/text-to-video"
    assert (bodies["v5.5 with sound"]["duration"], bodies["v5.5 with sound"]["generate_audio_switch"]) == (10, True)
    assert bodies["spoken on v5"]["lip_sync_tts_content"] == "The light is on."
    assert bodies["spoken on v5"]["lip_sync_tts_speaker"] == "Oliver"
    assert structured(spoken)["status"] == "completed", text_of(spoken)
    lip_sync = body_of(shared_sandbox, spoken)
    assert_documented(lip_sync)
    assert lip_sync["model"] == "pixverse/lip-sync"
    assert lip_sync["video_url"] == structured(made["local image"])["video_url"]
    assert (lip_sync["lip_sync_tts_content"], lip_sync["lip_sync_tts_speaker"]) == ("Good morning.", "Ava")
    assert structured(spoken)["model"] == "pixverse/lip-sync"
    # The journal keeps where an image came from and its digest, never its bytes.
    [local] = [video for video in listing["videos"] if video["generation_id"] == first_video]
    described = local["options"]["image_url"]
    assert described["file"] == str((root / "first.png").resolve())
    assert len(described["sha256"]) == 64
    assert "base64" not in str(listing)


UNSAFE_OR_IMPOSSIBLE: dict[str, dict[str, Any]] = {
    "a path outside every root": {"image": "{outside}/secret.png"},
    "a symbolic link out of the root": {"image": "{root}/link.png"},
    "a text file named .png": {"image": "{root}/notes.png"},
    "a 50 MB image": {"image": "{root}/huge.png"},
    "an http:// URL": {"image": "http://example.com/a.png"},
    "a file:// URL": {"image": "file:///etc/hosts"},
    "an unknown voice": {"lip_sync_text": "hello", "lip_sync_voice": "Robot"},
    "a voice without text": {"lip_sync_voice": "Ava"},
    "10 s on v5": {"duration": 10},
    "a v5.5 switch on v5": {"generate_audio": True},
    "lip-sync on v5.5": {"model_version": "v5.5", "lip_sync_text": "hello"},
    "a last frame without a first": {"last_frame": "https://example.com/b.png"},
    "a transition on v5.5": {
        "model_version": "v5.5",
        "image": "https://example.com/a.png",
        "last_frame": "https://example.com/b.png",
    },
    "an aspect ratio with an image": {"image": "https://example.com/a.png", "aspect_ratio": "1:1"},
    "1080p at 8 s": {"resolution": "1080p", "duration": 8},
}


async def test_unsafe_inputs_and_impossible_combinations_are_refused_with_nothing_sent(
    shared_sandbox: RunningSandbox, folders: dict[str, Path], tmp_path: Path
) -> None:
    places = {"root": folders["root"], "outside": folders["outside"]}
    before = shared_sandbox.state.stats()["creates"]
    async with connected("stdio", shared_sandbox, tmp_path, folders["root"]) as client:
        refusals = {}
        for case, fields in UNSAFE_OR_IMPOSSIBLE.items():
            arguments = {"prompt": f"refused: {case}"}
            arguments |= {
                name: value.format(**places) if isinstance(value, str) else value for name, value in fields.items()
            }
            result = await client.call_tool("create_video", arguments)
            refusals[case] = (result.is_error, text_of(result))

    assert shared_sandbox.state.stats()["creates"] == before, "a refused input reached the API"
    for case, (is_error, text) in refusals.items():
        assert is_error, case
        assert any(name in text for name in UNSAFE_OR_IMPOSSIBLE[case]), (case, text)  # it names the field
        assert "Traceback" not in text
