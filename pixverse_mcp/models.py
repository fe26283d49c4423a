"""What we send (strict) and what we read back (lenient) for PixVerse v5 text-to-video.

The option types are `Literal` aliases rather than `Enum` classes on purpose: pydantic inlines a `Literal` as an
`enum` list in JSON Schema, so an agent reading `tools/list` sees every allowed value in place (an `Enum` becomes a
`$ref` that many hosts never follow).
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

MODEL_ID: Final = "pixverse/v5/text-to-video"

AspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16"]
Resolution = Literal["360p", "540p", "720p", "1080p"]
Duration = Literal[5, 8]
Style = Literal["anime", "3d_animation", "clay", "comic", "cyberpunk"]

ASPECT_RATIOS: Final[tuple[str, ...]] = get_args(AspectRatio)
RESOLUTIONS: Final[tuple[str, ...]] = get_args(Resolution)
DURATIONS: Final[tuple[int, ...]] = get_args(Duration)
STYLES: Final[tuple[str, ...]] = get_args(Style)

DEFAULT_ASPECT_RATIO: Final[AspectRatio] = "16:9"
DEFAULT_RESOLUTION: Final[Resolution] = "720p"
DEFAULT_DURATION: Final[Duration] = 5

# PixVerse's documented prompt limit; the API answers 400 beyond it, so we refuse first and spend nothing.
MAX_PROMPT_LENGTH: Final = 2048
# The provider documents seeds as a signed 32-bit integer.
MAX_SEED: Final = 2_147_483_647
# Generation ids look like "<uuid>:pixverse/v5/text-to-video"; this bound only stops absurd input early.
MAX_GENERATION_ID_LENGTH: Final = 256


class VideoRequest(BaseModel):
    """One text-to-video request, validated to the letter before anything is sent."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_LENGTH)
    aspect_ratio: AspectRatio = DEFAULT_ASPECT_RATIO
    resolution: Resolution = DEFAULT_RESOLUTION
    duration: Duration = DEFAULT_DURATION
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_LENGTH)
    style: Style | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, strict=True)

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        # Python's idea of white space (it includes the \x1c-\x1f separators), the same as the API's.
        if not value.strip():
            raise ValueError("must contain some text, not only spaces")
        return value.strip()

    @field_validator("negative_prompt")
    @classmethod
    def _blank_negative_prompt_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _1080p_has_no_8_seconds(self) -> VideoRequest:
        if self.resolution == "1080p" and self.duration == 8:
            raise ValueError(
                "1080p videos can only be 5 seconds long: use duration 5 with 1080p, "
                "or resolution 360p, 540p or 720p for an 8-second video"
            )
        return self

    def to_body(self) -> dict[str, Any]:
        """The JSON body of the create request: the model id plus every field we have a value for."""
        body: dict[str, Any] = {"model": MODEL_ID}
        body.update(self.model_dump(exclude_none=True))
        return body


class GenerationStatus(str, Enum):
    """Our normalised view of the upstream's statuses (which have changed over time; see `normalise_status`)."""

    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """A status we have never seen: treated as still pending, never as success."""

    @property
    def is_final(self) -> bool:
        """Whether polling can stop: the generation will not change any more."""
        return self in (GenerationStatus.COMPLETED, GenerationStatus.FAILED)


# Every spelling seen from this gateway, old and new (upstream.md): one table, so a new one is a one-line change.
_STATUS_ALIASES: Final[dict[str, GenerationStatus]] = {
    "queued": GenerationStatus.QUEUED,
    "waiting": GenerationStatus.QUEUED,
    "pending": GenerationStatus.QUEUED,
    "generating": GenerationStatus.GENERATING,
    "active": GenerationStatus.GENERATING,
    "processing": GenerationStatus.GENERATING,
    "in_progress": GenerationStatus.GENERATING,
    "completed": GenerationStatus.COMPLETED,
    "succeeded": GenerationStatus.COMPLETED,
    "success": GenerationStatus.COMPLETED,
    "error": GenerationStatus.FAILED,
    "failed": GenerationStatus.FAILED,
}


def normalise_status(raw: object) -> GenerationStatus:
    """Map an upstream status to ours; anything unrecognised is pending (`UNKNOWN`), and logged once per sighting."""
    if isinstance(raw, str):
        status = _STATUS_ALIASES.get(raw.strip().lower())
        if status is not None:
            return status
    logger.warning("unrecognised generation status %r: treating it as still pending", raw)
    return GenerationStatus.UNKNOWN


class Generation(BaseModel):
    """A generation as the upstream last described it, read tolerantly: unknown fields are ignored, an unknown
    status is pending (its spelling kept in `raw_status`), never success."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: GenerationStatus
    raw_status: str | None = None
    video_url: str | None = None
    error: str | None = None
    usage: dict[str, Any] | None = None
    file_size: int | None = None
    content_type: str | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, fallback_id: str | None = None) -> Generation:
        """Build a Generation from a create or status response body.

        Raises `ValueError` when the body carries no usable id (and none is known), or claims completion
        without a video URL: the caller turns that into a typed error rather than pretending to succeed.
        """
        generation_id = payload.get("id") or payload.get("generation_id") or fallback_id
        if not isinstance(generation_id, str) or not generation_id:
            raise ValueError("the response carries no generation id")
        raw_status = payload.get("status")
        status = normalise_status(raw_status)
        video = payload.get("video")
        video_url = _video_url(video)
        if status is GenerationStatus.COMPLETED and not video_url:
            raise ValueError("the generation is reported completed but the response carries no video URL")
        meta = payload.get("meta")
        usage = meta.get("usage") if isinstance(meta, dict) else None
        return cls(
            id=generation_id,
            status=status,
            raw_status=raw_status if isinstance(raw_status, str) else None,
            video_url=video_url,
            error=_error_text(payload.get("error")) if status is GenerationStatus.FAILED else None,
            usage=usage if isinstance(usage, dict) else None,
            file_size=video.get("file_size") if isinstance(video, dict) and _is_int(video.get("file_size")) else None,
            content_type=_str_or_none(video.get("content_type")) if isinstance(video, dict) else None,
        )


def _video_url(video: object) -> str | None:
    # Seen as {"url": ...}; some sibling models answer a list of such objects or a bare URL string.
    if isinstance(video, list) and video:
        video = video[0]
    if isinstance(video, dict):
        video = video.get("url")
    if isinstance(video, str) and video.startswith(("https://", "http://")):
        return video
    return None


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or error.get("name")
        return str(message) if message else "the provider reported a failure without a message"
    if isinstance(error, str) and error.strip():
        return error.strip()
    return "the provider reported a failure without a message"


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
