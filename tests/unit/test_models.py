"""What we send (VideoRequest, strict) and what we read back (normalise_status, Generation, lenient)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pixverse_mcp.errors import UnexpectedResponseError
from pixverse_mcp.models import (
    ASPECT_RATIOS,
    DURATIONS,
    MODEL_ID,
    RESOLUTIONS,
    STYLES,
    Generation,
    GenerationStatus,
    VideoRequest,
    normalise_status,
    request_size,
)

# The allowed values as upstream.md lists them, written out here so a wrong enum in the package cannot pass.
UPSTREAM_ASPECT_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
UPSTREAM_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
UPSTREAM_DURATIONS = (5, 8, 10)  # 10 on v5.5 only
UPSTREAM_STYLES = ("anime", "3d_animation", "clay", "comic", "cyberpunk")

GENERATION_ID = "1fe4344e-7b6a-4a5e-9d1c-0f2b3c4d5e6f:pixverse/v5/text-to-video"
VIDEO_URL = "https://cdn.aimlapi.com/generations/output.mp4"

# The provider's own sample output for a finished generation (upstream.md, "Status: response").
PROVIDER_COMPLETED_SAMPLE: dict[str, Any] = {
    "id": GENERATION_ID,
    "status": "completed",
    "video": {
        "url": VIDEO_URL,
        "content_type": "video/mp4",
        "file_name": "output.mp4",
        "file_size": 6274330,
    },
}


# --- VideoRequest -------------------------------------------------------------------------------------------------


def test_request_defaults_match_the_provider_defaults() -> None:
    request = VideoRequest(prompt="a red fox running through snow")

    assert request.aspect_ratio is None  # unset, so it can be refused with an image; text-to-video sends 16:9
    assert request.to_body()["aspect_ratio"] == "16:9"
    assert request.model == "pixverse/v5/text-to-video"
    assert request.resolution == "720p"
    assert request.duration == 5
    assert request.negative_prompt is None
    assert request.style is None
    assert request.seed is None


def test_package_enums_are_exactly_the_documented_values() -> None:
    assert tuple(ASPECT_RATIOS) == UPSTREAM_ASPECT_RATIOS
    assert tuple(RESOLUTIONS) == UPSTREAM_RESOLUTIONS
    assert tuple(DURATIONS) == UPSTREAM_DURATIONS
    assert tuple(STYLES) == UPSTREAM_STYLES


@pytest.mark.parametrize("aspect_ratio", UPSTREAM_ASPECT_RATIOS)
def test_every_documented_aspect_ratio_is_accepted(aspect_ratio: str) -> None:
    assert VideoRequest(prompt="p", aspect_ratio=aspect_ratio).to_body()["aspect_ratio"] == aspect_ratio  # type: ignore[arg-type]


@pytest.mark.parametrize("resolution", UPSTREAM_RESOLUTIONS)
def test_every_documented_resolution_is_accepted_at_5_seconds(resolution: str) -> None:
    assert VideoRequest(prompt="p", resolution=resolution, duration=5).to_body()["resolution"] == resolution  # type: ignore[arg-type]


@pytest.mark.parametrize("resolution", ["360p", "540p", "720p"])
def test_8_seconds_is_accepted_below_1080p(resolution: str) -> None:
    assert VideoRequest(prompt="p", resolution=resolution, duration=8).to_body()["duration"] == 8  # type: ignore[arg-type]


@pytest.mark.parametrize("style", UPSTREAM_STYLES)
def test_every_documented_style_is_accepted(style: str) -> None:
    assert VideoRequest(prompt="p", style=style).to_body()["style"] == style  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("aspect_ratio", "21:9"),
        ("aspect_ratio", "16x9"),
        ("aspect_ratio", ""),
        ("resolution", "4k"),
        ("resolution", "720"),
        ("resolution", "720P"),
        ("duration", 0),
        ("duration", 6),
        ("duration", 12),
        ("duration", "five"),
        ("style", "realistic"),
        ("style", "watercolor"),
        ("style", "Anime"),
    ],
)
def test_undocumented_option_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        VideoRequest(prompt="p", **{field: value})  # type: ignore[arg-type]

    assert caught.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize("prompt", ["", " ", "   \n\t  "])
def test_blank_prompt_is_rejected(prompt: str) -> None:
    with pytest.raises(ValidationError):
        VideoRequest(prompt=prompt)


def test_prompt_of_2048_characters_is_accepted() -> None:
    assert len(VideoRequest(prompt="a" * 2048).prompt) == 2048


def test_prompt_longer_than_2048_characters_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        VideoRequest(prompt="a" * 2049)

    assert caught.value.errors()[0]["loc"] == ("prompt",)


def test_prompt_surrounding_whitespace_is_not_sent() -> None:
    assert VideoRequest(prompt="  a red fox \n").to_body()["prompt"] == "a red fox"


def test_negative_prompt_longer_than_2048_characters_is_rejected() -> None:
    with pytest.raises(ValidationError):
        VideoRequest(prompt="p", negative_prompt="b" * 2049)


@pytest.mark.parametrize("seed", [0, 1, 2_147_483_647])
def test_seed_within_signed_32_bit_range_is_accepted(seed: int) -> None:
    assert VideoRequest(prompt="p", seed=seed).to_body()["seed"] == seed


@pytest.mark.parametrize("seed", [-1, 2_147_483_648, 2**63])
def test_seed_outside_signed_32_bit_range_is_rejected(seed: int) -> None:
    with pytest.raises(ValidationError) as caught:
        VideoRequest(prompt="p", seed=seed)

    assert caught.value.errors()[0]["loc"] == ("seed",)


def test_1080p_at_8_seconds_is_rejected_with_a_message_naming_what_is_allowed() -> None:
    with pytest.raises(ValidationError) as caught:
        VideoRequest(prompt="p", resolution="1080p", duration=8)

    message = str(caught.value)
    assert "1080p" in message
    assert "duration 5" in message
    for resolution in ("360p", "540p", "720p"):
        assert resolution in message


def test_1080p_at_5_seconds_is_accepted() -> None:
    body = VideoRequest(prompt="p", resolution="1080p", duration=5).to_body()

    assert (body["resolution"], body["duration"]) == ("1080p", 5)


@pytest.mark.parametrize(
    "extra",
    [{"fps": 30}, {"model": "pixverse/v4/text-to-video"}, {"lip_sync_tts_content": "hello"}],
)
def test_unknown_fields_are_forbidden(extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        VideoRequest(prompt="p", **extra)  # type: ignore[arg-type]

    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_request_is_immutable() -> None:
    request = VideoRequest(prompt="p")

    with pytest.raises(ValidationError):
        request.prompt = "something else"


def test_body_of_a_minimal_request_carries_the_model_id_and_every_default() -> None:
    assert VideoRequest(prompt="a red fox").to_body() == {
        "model": "pixverse/v5/text-to-video",
        "prompt": "a red fox",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    }


def test_body_of_a_full_request_carries_every_field() -> None:
    request = VideoRequest(
        prompt="a red fox",
        aspect_ratio="9:16",
        resolution="540p",
        duration=8,
        negative_prompt="blur",
        style="clay",
        seed=42,
    )

    assert request.to_body() == {
        "model": MODEL_ID,
        "prompt": "a red fox",
        "aspect_ratio": "9:16",
        "resolution": "540p",
        "duration": 8,
        "negative_prompt": "blur",
        "style": "clay",
        "seed": 42,
    }
    assert MODEL_ID == "pixverse/v5/text-to-video"


def test_body_duration_is_an_integer_not_a_string() -> None:
    duration = VideoRequest(prompt="p", duration=8).to_body()["duration"]

    assert type(duration) is int
    assert duration == 8


def test_seed_zero_is_sent_not_dropped_as_falsy() -> None:
    assert VideoRequest(prompt="p", seed=0).to_body()["seed"] == 0


@pytest.mark.parametrize("negative_prompt", ["", "   ", "\n\t"])
def test_blank_negative_prompt_is_omitted_from_the_body(negative_prompt: str) -> None:
    request = VideoRequest(prompt="p", negative_prompt=negative_prompt)

    assert request.negative_prompt is None
    assert "negative_prompt" not in request.to_body()


# --- normalise_status ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", GenerationStatus.QUEUED),
        ("waiting", GenerationStatus.QUEUED),
        ("pending", GenerationStatus.QUEUED),
        ("generating", GenerationStatus.GENERATING),
        ("active", GenerationStatus.GENERATING),
        ("processing", GenerationStatus.GENERATING),
        ("in_progress", GenerationStatus.GENERATING),
        ("completed", GenerationStatus.COMPLETED),
        ("succeeded", GenerationStatus.COMPLETED),
        ("success", GenerationStatus.COMPLETED),
        ("error", GenerationStatus.FAILED),
        ("failed", GenerationStatus.FAILED),
    ],
)
def test_every_known_status_spelling_is_normalised(raw: str, expected: GenerationStatus) -> None:
    assert normalise_status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("COMPLETED", GenerationStatus.COMPLETED), ("  Generating\n", GenerationStatus.GENERATING)],
)
def test_status_case_and_surrounding_whitespace_do_not_matter(raw: str, expected: GenerationStatus) -> None:
    assert normalise_status(raw) is expected


@pytest.mark.parametrize("raw", ["", "done", "finished", "complete", "cancelled", "completed!", "ok"])
def test_unknown_status_is_unknown_never_completed(raw: str) -> None:
    status = normalise_status(raw)

    assert status is GenerationStatus.UNKNOWN
    assert not status.is_final


@pytest.mark.parametrize("raw", [None, 1, 0, True, 3.5, ["completed"], {"status": "completed"}])
def test_non_string_status_is_unknown(raw: object) -> None:
    assert normalise_status(raw) is GenerationStatus.UNKNOWN


def test_only_completed_and_failed_are_final() -> None:
    assert {status for status in GenerationStatus if status.is_final} == {
        GenerationStatus.COMPLETED,
        GenerationStatus.FAILED,
    }


# --- Generation.from_payload --------------------------------------------------------------------------------------


def test_provider_sample_completed_body_is_read_in_full() -> None:
    generation = Generation.from_payload(PROVIDER_COMPLETED_SAMPLE)

    assert generation.id == GENERATION_ID
    assert generation.status is GenerationStatus.COMPLETED
    assert generation.raw_status == "completed"
    assert generation.video_url == VIDEO_URL
    assert generation.content_type == "video/mp4"
    assert generation.file_size == 6274330
    assert generation.error is None


def test_queued_create_response_keeps_its_usage_object_whole() -> None:
    usage = {"tokens_used": 840000, "credits_used": 840000}

    generation = Generation.from_payload({"id": GENERATION_ID, "status": "queued", "meta": {"usage": usage}})

    assert generation.status is GenerationStatus.QUEUED
    assert generation.video_url is None
    assert generation.usage == usage


def test_usage_is_none_when_meta_is_absent_or_malformed() -> None:
    assert Generation.from_payload({"id": GENERATION_ID, "status": "queued"}).usage is None
    assert Generation.from_payload({"id": GENERATION_ID, "status": "queued", "meta": "x"}).usage is None
    assert Generation.from_payload({"id": GENERATION_ID, "status": "queued", "meta": {"usage": 5}}).usage is None


def test_succeeded_with_a_video_is_completed() -> None:
    generation = Generation.from_payload({"id": GENERATION_ID, "status": "succeeded", "video": {"url": VIDEO_URL}})

    assert generation.status is GenerationStatus.COMPLETED
    assert generation.raw_status == "succeeded"
    assert generation.video_url == VIDEO_URL


def test_failure_with_error_as_a_string_keeps_the_message() -> None:
    generation = Generation.from_payload({"id": GENERATION_ID, "status": "failed", "error": "content policy"})

    assert generation.status is GenerationStatus.FAILED
    assert generation.error == "content policy"


def test_failure_with_error_as_an_object_keeps_its_message() -> None:
    generation = Generation.from_payload(
        {"id": GENERATION_ID, "status": "error", "error": {"name": "ModerationError", "message": "prompt refused"}}
    )

    assert generation.status is GenerationStatus.FAILED
    assert generation.raw_status == "error"
    assert generation.error == "prompt refused"


@pytest.mark.parametrize("error", [None, "", "   ", {}, {"code": 7}])
def test_failure_without_a_message_still_says_it_failed(error: object) -> None:
    generation = Generation.from_payload({"id": GENERATION_ID, "status": "failed", "error": error})

    assert generation.status is GenerationStatus.FAILED
    assert generation.error
    assert "fail" in generation.error


@pytest.mark.parametrize(
    "video",
    [None, {}, {"url": None}, {"url": ""}, {"url": "output.mp4"}, {"url": "ftp://cdn/x.mp4"}, [], "not a url"],
)
@pytest.mark.parametrize("status", ["completed", "succeeded"])
def test_completed_without_a_video_url_is_refused(status: str, video: object) -> None:
    payload: dict[str, Any] = {"id": GENERATION_ID, "status": status}
    if video is not None:
        payload["video"] = video

    with pytest.raises(UnexpectedResponseError, match="video URL"):
        Generation.from_payload(payload)


@pytest.mark.parametrize("payload", [{"status": "queued"}, {"id": "", "status": "queued"}, {"id": None}])
def test_missing_id_without_fallback_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedResponseError, match="id"):
        Generation.from_payload(payload)


def test_missing_id_with_fallback_uses_the_fallback() -> None:
    generation = Generation.from_payload({"status": "generating"}, fallback_id=GENERATION_ID)

    assert generation.id == GENERATION_ID
    assert generation.status is GenerationStatus.GENERATING


def test_id_in_the_body_wins_over_the_fallback() -> None:
    assert Generation.from_payload({"id": "from-body", "status": "queued"}, fallback_id="fallback").id == "from-body"


def test_generation_id_key_is_accepted_as_the_id() -> None:
    assert Generation.from_payload({"generation_id": GENERATION_ID, "status": "queued"}).id == GENERATION_ID


def test_unknown_extra_fields_do_not_stop_parsing() -> None:
    payload = {
        **PROVIDER_COMPLETED_SAMPLE,
        "created_at": "2026-01-01T00:00:00Z",
        "progress": 100,
        "video": {**PROVIDER_COMPLETED_SAMPLE["video"], "duration": 5.0, "width": 1280},
        "meta": {"usage": {"credits_used": 840000}, "region": "eu"},
    }

    generation = Generation.from_payload(payload)

    assert generation.status is GenerationStatus.COMPLETED
    assert generation.video_url == VIDEO_URL
    assert generation.usage == {"credits_used": 840000}


def test_video_as_a_list_uses_its_first_url() -> None:
    generation = Generation.from_payload(
        {"id": GENERATION_ID, "status": "completed", "video": [{"url": VIDEO_URL}, {"url": VIDEO_URL + "?2"}]}
    )

    assert generation.video_url == VIDEO_URL


def test_video_as_a_bare_url_string_is_read() -> None:
    assert Generation.from_payload({"id": GENERATION_ID, "status": "completed", "video": VIDEO_URL}).video_url == (
        VIDEO_URL
    )


def test_unknown_status_with_a_video_is_still_pending_and_keeps_the_raw_value() -> None:
    generation = Generation.from_payload({"id": GENERATION_ID, "status": "done", "video": {"url": VIDEO_URL}})

    assert generation.status is GenerationStatus.UNKNOWN
    assert generation.raw_status == "done"


@pytest.mark.parametrize("file_size", ["6274330", True, 1.5, None])
def test_non_integer_file_size_is_dropped(file_size: object) -> None:
    payload = {"id": GENERATION_ID, "status": "completed", "video": {"url": VIDEO_URL, "file_size": file_size}}

    assert Generation.from_payload(payload).file_size is None


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"resolution": "1080p", "duration": 5}, ("1080p", 5)),
        ({"resolution": "540p"}, ("540p", 5)),
        (None, ("720p", 5)),
        ({"resolution": 720, "duration": 8}, ("720p", 5)),  # a journal row written by hand: the defaults, not a crash
        ({"resolution": "720p", "duration": True}, ("720p", 5)),
    ],
)
def test_a_journaled_request_has_a_size_even_when_odd(body: dict[str, object] | None, size: tuple[str, int]) -> None:
    assert request_size(body) == size
