"""Bad input costs nothing: every invalid call is refused before any request reaches the API, with a message that
names the field and what is allowed, and never a traceback.

One real server (in process, with the SDK's `Client`) and one sandbox serve the whole module. That sandbox only
ever sees the calls below, so after each of them its counters must all still be zero.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from pixverse_mcp.sandbox import RunningSandbox
from tests.stdio_support import HOST_READ_TIMEOUT_SECONDS, assert_no_traceback, call, text_of

pytestmark = pytest.mark.anyio

ALL_ASPECT_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
ALL_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
ALL_STYLES = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
PROMPT = "a red fox running through snow"
CLIENT_OPTIONS = {"read_timeout_seconds": HOST_READ_TIMEOUT_SECONDS}


# (tool, arguments, words the message must contain: the field and what is allowed)
BAD_CALLS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "resolution 4k": (
        "generate_video_blocking",
        {"prompt": PROMPT, "resolution": "4k"},
        ("resolution", *ALL_RESOLUTIONS),
    ),
    "resolution 4k, create_video": ("create_video", {"prompt": PROMPT, "resolution": "4k"}, ("resolution", "720p")),
    "aspect ratio 21:9": (
        "generate_video_blocking",
        {"prompt": PROMPT, "aspect_ratio": "21:9"},
        ("aspect_ratio", *ALL_ASPECT_RATIOS),
    ),
    "duration 6": ("generate_video_blocking", {"prompt": PROMPT, "duration": 6}, ("duration", "5", "8")),
    # The schema publishes duration as an integer enum [5, 8]: the string "5" is not one of its values.
    "duration as a string": ("generate_video_blocking", {"prompt": PROMPT, "duration": "5"}, ("duration", "5", "8")),
    "style noir": ("generate_video_blocking", {"prompt": PROMPT, "style": "noir"}, ("style", *ALL_STYLES)),
    "seed -1": ("generate_video_blocking", {"prompt": PROMPT, "seed": -1}, ("seed", "0", "2147483647")),
    "seed 2^31": ("generate_video_blocking", {"prompt": PROMPT, "seed": 2_147_483_648}, ("seed", "0", "2147483647")),
    "blank prompt": ("generate_video_blocking", {"prompt": ""}, ("prompt", "2048")),
    "whitespace-only prompt": ("generate_video_blocking", {"prompt": " \t\n  "}, ("prompt", "2048")),
    "whitespace-only prompt, create_video": ("create_video", {"prompt": "     "}, ("prompt", "2048")),
    "2049-character prompt": ("generate_video_blocking", {"prompt": "a" * 2049}, ("prompt", "2048")),
    "negative prompt too long": (
        "generate_video_blocking",
        {"prompt": PROMPT, "negative_prompt": "b" * 2049},
        ("negative_prompt", "2048"),
    ),
    "1080p for 8 s": (
        "generate_video_blocking",
        {"prompt": PROMPT, "resolution": "1080p", "duration": 8},
        ("1080p", "duration", "5"),
    ),
    "1080p for 8 s, create_video": (
        "create_video",
        {"prompt": PROMPT, "resolution": "1080p", "duration": 8},
        ("1080p", "duration", "5"),
    ),
    "unknown argument aspectRatio": (
        "generate_video_blocking",
        {"prompt": PROMPT, "aspectRatio": "9:16"},
        ("aspectRatio", "aspect_ratio"),
    ),
    "unknown argument, create_video": ("create_video", {"prompt": PROMPT, "length": 8}, ("length", "duration")),
    "missing prompt": ("generate_video_blocking", {"resolution": "720p"}, ("prompt", "required")),
    "missing prompt, create_video": ("create_video", {}, ("prompt", "required")),
    "empty generation id": ("get_video_status", {"generation_id": ""}, ("generation_id",)),
    "whitespace-only generation id": ("get_video_status", {"generation_id": "   "}, ("generation_id",)),
    "whitespace-only generation id, waiting": (
        "get_video_status",
        {"generation_id": " \t ", "wait_seconds": 5},
        ("generation_id",),
    ),
    "missing generation id": ("get_video_status", {"wait_seconds": 5}, ("generation_id", "required")),
    "negative wait": ("get_video_status", {"generation_id": "x", "wait_seconds": -1}, ("wait_seconds", "0")),
    "timeout below 1 s": ("generate_video_blocking", {"prompt": PROMPT, "timeout_seconds": 0}, ("timeout_seconds",)),
    "list limit 0": ("list_videos", {"limit": 0}, ("limit", "1", "100")),
    "list status unknown value": ("list_videos", {"status": "done"}, ("status", "completed")),
}


@pytest.mark.parametrize(("tool", "arguments", "expected_words"), BAD_CALLS.values(), ids=BAD_CALLS.keys())
async def test_bad_input_is_refused_with_a_helpful_message_and_no_request(
    client: Client, shared_sandbox: RunningSandbox, tool: str, arguments: dict[str, Any], expected_words: tuple[str]
) -> None:
    result = await call(client, tool, arguments)

    assert result.is_error is True
    message = text_of(result)
    for word in expected_words:
        assert word in message, f"the message does not mention {word!r}: {message}"
    assert_no_traceback(message)
    # Bounds are written out: 2.14748e+09 is not the largest seed (2147483647) and no agent should have to guess.
    assert "e+0" not in message, message
    # The rejected value is not echoed back at length (a 2049-character prompt stays out of the answer).
    assert len(message) < 1000, message
    # The module's sandbox must never receive a single request.
    assert shared_sandbox.state.stats() == {"creates": 0, "accepted": 0, "status_requests": 0, "rejected": 0}
