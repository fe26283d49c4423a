"""What we send (strict) and what we read back (lenient) for PixVerse v5 text-to-video.

The option types are `Literal` aliases rather than `Enum` classes on purpose: pydantic inlines a `Literal` as an
`enum` list in JSON Schema, so an agent reading `tools/list` sees every allowed value in place (an `Enum` becomes a
`$ref` that many hosts never follow).
"""

from __future__ import annotations

import logging
import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeGuard, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from pixverse_mcp.errors import UnexpectedResponseError

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
# At least one character that is not white space: a blank prompt is refused by the published schema itself.
NOT_BLANK: Final = r"\S"
# Unicode categories of characters that show something: letters, marks, numbers, punctuation, symbols.
_VISIBLE: Final = frozenset("LMNPS")
# What the provider bills in: 2,000,000 credits to the US dollar (its pricing pages).
CREDITS_PER_USD: Final = 2_000_000


def clean_text(text: str) -> str:
    """`text` with what no UTF-8 store or stream can carry replaced by U+FFFD: lone UTF-16 surrogates (valid JSON
    escapes, invalid Unicode) and NUL. Applied wherever outside text enters: one odd value must not crash a write."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def request_size(body: dict[str, Any] | None) -> tuple[str, int]:
    """(resolution, duration) of a journaled request body: the defaults where it has none (or odd ones)."""
    resolution = body.get("resolution", DEFAULT_RESOLUTION) if body else DEFAULT_RESOLUTION
    duration = body.get("duration", DEFAULT_DURATION) if body else DEFAULT_DURATION
    if not isinstance(resolution, str) or not isinstance(duration, int) or isinstance(duration, bool):
        return DEFAULT_RESOLUTION, DEFAULT_DURATION
    return resolution, duration


def usage_cost_usd(usage: dict[str, Any] | None) -> float | None:
    """What a create's `meta.usage` says it cost, in US dollars: `usd_spent` when present, else `credits_used`
    (older answers: `tokens_used`) at `CREDITS_PER_USD`; None when it says nothing we can read."""
    if not usage:
        return None
    dollars = usage.get("usd_spent")
    if _is_number(dollars) and dollars >= 0:
        return float(dollars)
    for name in ("credits_used", "tokens_used"):
        credits = usage.get(name)
        if _is_number(credits) and credits >= 0:
            return float(credits) / CREDITS_PER_USD
    return None


def _integer_only(value: object) -> object:
    """JSON says integer: refuse "5" and 5.0 as the seed is refused, instead of guessing what was meant."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Input should be an integer")
    return value


class VideoRequest(BaseModel):
    """One text-to-video request, validated to the letter before anything is sent.

    The one source of the video parameters: their order, allowed values, defaults and descriptions here are what
    the MCP tools publish (`arguments.with_video_parameters`) and what `pixverse-mcp generate --help` lists.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_LENGTH,
        pattern=NOT_BLANK,
        description="What the video shows: subject, action, setting, camera, light. English works best. "
        f"At most {MAX_PROMPT_LENGTH} characters.",
    )
    aspect_ratio: AspectRatio = Field(
        default=DEFAULT_ASPECT_RATIO, description="Frame shape: 16:9 landscape, 9:16 vertical, 1:1 square."
    )
    resolution: Resolution = Field(
        default=DEFAULT_RESOLUTION,
        description="Short side of the frame. Higher takes longer and costs more; 1080p is 5 s only.",
    )
    duration: Annotated[Duration, BeforeValidator(_integer_only)] = Field(
        default=DEFAULT_DURATION, description="Clip length in seconds: 5 or 8 (8 is not available at 1080p)."
    )
    negative_prompt: str | None = Field(
        default=None, max_length=MAX_PROMPT_LENGTH, description="What the video should avoid (optional)."
    )
    style: Style | None = Field(default=None, description="Optional visual style; omit for a realistic look.")
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        strict=True,
        description="Optional; the same seed and request give a similar video.",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        # Python's idea of white space (it includes the \x1c-\x1f separators), the same as the API's; and a prompt
        # of only invisible or control characters (zero-width spaces, BOMs, NULs) says nothing either: refused,
        # not paid for.
        if not any(unicodedata.category(character)[0] in _VISIBLE for character in value):
            raise ValueError("must contain some text, not only spaces or invisible characters")
        return value.strip()

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _valid_unicode(cls, value: str | None) -> str | None:
        if value is not None and clean_text(value) != value:
            raise ValueError("contains a character that is not valid text (a lone surrogate or NUL)")
        return value

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


class GenerationStatus(StrEnum):
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

        Raises `UnexpectedResponseError` when the body carries no usable id (and none is known), or claims
        completion without a video URL: never pretend to succeed.
        """
        generation_id = payload.get("id") or payload.get("generation_id") or fallback_id
        if not isinstance(generation_id, str) or not generation_id.strip():
            raise UnexpectedResponseError("the response carries no generation id")
        if len(generation_id) > MAX_GENERATION_ID_LENGTH:
            raise UnexpectedResponseError(
                f"the response's generation id is {len(generation_id)} characters long, not an id this API gives"
            )
        raw_status = payload.get("status")
        status = normalise_status(raw_status)
        video = payload.get("video")
        video_url = _video_url(video)
        if status is GenerationStatus.COMPLETED and not video_url:
            raise UnexpectedResponseError("the generation is reported completed but the response carries no video URL")
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


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
