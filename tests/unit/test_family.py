"""The whole PixVerse family in one request shape: which model each request goes to, the body each model takes (as
its OpenAPI document lists it), and every combination a model cannot take refused before anything is sent."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pixverse_mcp.errors import InvalidArgumentError
from pixverse_mcp.inputs import InputLimits, resolve, sniff
from pixverse_mcp.models import LipSyncRequest, VideoRequest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64
MP3 = b"ID3\x04" + b"\x00" * 64
LIMITS = InputLimits(image=1024, video=4096, audio=4096)

# The fields each model's documented body may carry (aimlapi/api-docs, docs/api-references/video-models/PixVerse),
# written out here so that one wrong list in the package cannot pass both sides.
COMMON = {"model", "prompt", "resolution", "duration", "negative_prompt", "style", "seed"}
DOCUMENTED: dict[str, set[str]] = {
    "pixverse/v5/text-to-video": COMMON | {"aspect_ratio", "lip_sync_tts_content", "lip_sync_tts_speaker"},
    "pixverse/v5/image-to-video": COMMON | {"image_url", "lip_sync_tts_content", "lip_sync_tts_speaker"},
    "pixverse/v5/transition": COMMON | {"image_url", "tail_image_url", "lip_sync_tts_content", "lip_sync_tts_speaker"},
    "pixverse/v5.5/text-to-video": COMMON
    | {"aspect_ratio", "generate_audio_switch", "generate_multi_clip_switch", "thinking_type"},
    "pixverse/v5.5/image-to-video": COMMON
    | {"image_url", "generate_audio_switch", "generate_multi_clip_switch", "thinking_type"},
}


@pytest.mark.parametrize(
    ("fields", "model"),
    [
        ({}, "pixverse/v5/text-to-video"),
        ({"image": "https://example.com/a.png"}, "pixverse/v5/image-to-video"),
        ({"image": "https://example.com/a.png", "last_frame": "https://example.com/b.png"}, "pixverse/v5/transition"),
        ({"model_version": "v5.5"}, "pixverse/v5.5/text-to-video"),
        ({"model_version": "v5.5", "image": "https://example.com/a.png"}, "pixverse/v5.5/image-to-video"),
    ],
)
def test_the_inputs_pick_the_model(fields: dict[str, Any], model: str) -> None:
    request = VideoRequest(prompt="a fox", **fields)

    assert request.model == model
    assert request.to_body()["model"] == model


def test_each_model_gets_only_its_documented_fields() -> None:
    everything: dict[str, dict[str, Any]] = {
        "pixverse/v5/text-to-video": {"lip_sync_text": "hello", "lip_sync_voice": "Ava", "aspect_ratio": "9:16"},
        "pixverse/v5/image-to-video": {"image": "https://e.x/a.png", "lip_sync_text": "hi"},
        "pixverse/v5/transition": {"image": "https://e.x/a.png", "last_frame": "https://e.x/b.png"},
        "pixverse/v5.5/text-to-video": {
            "model_version": "v5.5",
            "generate_audio": True,
            "multi_clip": False,
            "prompt_reasoning": "auto",
            "duration": 10,
        },
        "pixverse/v5.5/image-to-video": {"model_version": "v5.5", "image": "https://e.x/a.png", "generate_audio": True},
    }
    for model, fields in everything.items():
        body = VideoRequest(prompt="a fox", negative_prompt="rain", style="anime", seed=7, **fields).to_body()
        assert body["model"] == model
        assert set(body) <= DOCUMENTED[model], (model, set(body) - DOCUMENTED[model])


def test_v55_switches_go_by_their_api_names() -> None:
    body = VideoRequest(
        prompt="a fox", model_version="v5.5", generate_audio=True, multi_clip=True, prompt_reasoning="disabled"
    ).to_body()

    assert (body["generate_audio_switch"], body["generate_multi_clip_switch"], body["thinking_type"]) == (
        True,
        True,
        "disabled",
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"duration": 10}, ["duration 10", "v5.5"]),
        ({"generate_audio": True}, ["generate_audio", "v5.5"]),
        ({"multi_clip": True, "prompt_reasoning": "auto"}, ["multi_clip", "prompt_reasoning", "v5.5"]),
        ({"model_version": "v5.5", "lip_sync_text": "hi"}, ["lip_sync_text", "v5"]),
        ({"lip_sync_voice": "Ava"}, ["lip_sync_voice", "lip_sync_text"]),
        ({"last_frame": "https://e.x/b.png"}, ["last_frame", "image"]),
        (
            {"model_version": "v5.5", "image": "https://e.x/a.png", "last_frame": "https://e.x/b.png"},
            ["last_frame", "v5"],
        ),
        ({"image": "https://e.x/a.png", "aspect_ratio": "1:1"}, ["aspect_ratio", "image"]),
        ({"resolution": "1080p", "duration": 8}, ["1080p", "duration 5"]),
    ],
)
def test_combinations_a_model_cannot_take_are_refused_naming_the_fields(
    fields: dict[str, Any], named: list[str]
) -> None:
    with pytest.raises(ValidationError) as refused:
        VideoRequest(prompt="a fox", **fields)

    message = str(refused.value)
    assert all(word in message for word in named), message


@pytest.mark.parametrize("voice", ["ava", "Robot", ""])
def test_an_unknown_voice_is_refused(voice: str) -> None:
    with pytest.raises(ValidationError):
        VideoRequest(prompt="a fox", lip_sync_text="hello", lip_sync_voice=voice)  # type: ignore[arg-type]


def test_lip_sync_takes_a_sound_or_words_not_both_nor_neither() -> None:
    with_words = LipSyncRequest(video="https://e.x/v.mp4", lip_sync_text="hello there")
    with_sound = LipSyncRequest(video="https://e.x/v.mp4", audio="https://e.x/a.mp3")

    assert with_words.to_body() == {
        "model": "pixverse/lip-sync",
        "video_url": "https://e.x/v.mp4",
        "lip_sync_tts_content": "hello there",
        "lip_sync_tts_speaker": "Auto",
    }
    assert with_sound.to_body() == {
        "model": "pixverse/lip-sync",
        "video_url": "https://e.x/v.mp4",
        "audio_url": "https://e.x/a.mp3",
    }
    for fields in ({}, {"audio": "https://e.x/a.mp3", "lip_sync_text": "hi"}, {"lip_sync_voice": "Ava"}):
        with pytest.raises(ValidationError):
            LipSyncRequest(video="https://e.x/v.mp4", **fields)


# --- inputs: from where agents have them, and only from there --------------------------------------------------


def test_kinds_are_read_from_bytes_not_names() -> None:
    assert sniff(PNG, "image") == "image/png"
    assert sniff(JPEG, "image") == "image/jpeg"
    assert sniff(WEBP, "image") == "image/webp"
    assert sniff(MP4, "video") == "video/mp4"
    assert sniff(MP3, "audio") == "audio/mpeg"
    assert sniff(b"just some text", "image") is None
    assert sniff(MP4, "image") is None


@pytest.mark.anyio
async def test_an_https_url_is_sent_as_it_is() -> None:
    given = await resolve("https://example.com/a.png", "image", folders=[], limits=LIMITS, field="image")

    assert given.sent == "https://example.com/a.png"
    assert given.described == {"url": "https://example.com/a.png"}


@pytest.mark.anyio
async def test_a_local_image_inside_an_allowed_folder_goes_as_a_data_uri_and_is_journaled_by_digest(
    tmp_path: Path,
) -> None:
    (tmp_path / "frame.png").write_bytes(PNG)

    given = await resolve(str(tmp_path / "frame.png"), "image", folders=[tmp_path], limits=LIMITS, field="image")

    assert given.sent == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert given.described["file"] == str((tmp_path / "frame.png").resolve())
    assert given.described["bytes"] == len(PNG)
    assert len(given.described["sha256"]) == 64
    assert "base64" not in str(given.described)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reference", "why"),
    [
        ("http://example.com/a.png", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/a.png", "scheme"),
        ("data:image/png;base64,!!!", "base64"),
        ("data:text/plain;base64," + base64.b64encode(b"hello").decode(), "does not hold"),
        ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "does not hold"),
        ("data:image/png;base64," + base64.b64encode(PNG * 100).decode(), "limit"),
    ],
)
async def test_unusable_references_are_refused_naming_the_field(reference: str, why: str) -> None:
    with pytest.raises(InvalidArgumentError, match="`image`") as refused:
        await resolve(reference, "image", folders=[Path("/nonexistent")], limits=LIMITS, field="image")

    assert why in str(refused.value)


@pytest.mark.anyio
async def test_local_files_outside_the_allowed_folders_are_refused(tmp_path: Path) -> None:
    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.png").write_bytes(PNG)
    os.symlink(elsewhere / "secret.png", allowed / "link.png")
    (allowed / "notes.png").write_text("a text file named .png")
    (allowed / "huge.png").write_bytes(PNG + b"\x00" * 2048)

    for name, why in (
        (str(elsewhere / "secret.png"), "inside"),
        (str(allowed / "link.png"), "inside"),  # a symbolic link out of the folder
        (str(allowed / "../elsewhere/secret.png"), "inside"),
        (str(allowed / "missing.png"), "inside"),
        (str(allowed / "notes.png"), "not a PNG"),
        (str(allowed / "huge.png"), "limit"),
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            await resolve(name, "image", folders=[allowed], limits=LIMITS, field="image")
        assert why in str(refused.value), (name, str(refused.value))


@pytest.mark.anyio
async def test_without_allowed_folders_no_local_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "frame.png").write_bytes(PNG)

    with pytest.raises(InvalidArgumentError, match="reads no local files"):
        await resolve(str(tmp_path / "frame.png"), "image", folders=[], limits=LIMITS, field="image")
