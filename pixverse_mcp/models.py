"""What we send (strict) and what we read back (lenient) for the PixVerse family on the AI/ML API.

One request shape (`VideoRequest`) covers text-to-video, image-to-video and transitions on v5 and v5.5: the server
picks the model from the inputs (no image: text-to-video; an image: image-to-video; an image and a last frame: the v5
transition). `LipSyncRequest` is the lip-sync model's own. Every rule the published schema cannot say (which field
goes with which model) is checked here, before anything is sent, with a message naming the fields.

The option types are `Literal` aliases rather than `Enum` classes on purpose: pydantic inlines a `Literal` as an
`enum` list in JSON Schema, so an agent reading `tools/list` sees every allowed value in place (an `Enum` becomes a
`$ref` that many hosts never follow).
"""

from __future__ import annotations

import contextlib
import logging
import math
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeGuard, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from pixverse_mcp.errors import UnexpectedResponseError
from pixverse_mcp.text import clean_text

logger = logging.getLogger(__name__)

AspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16"]
Resolution = Literal["360p", "540p", "720p", "1080p"]
Duration = Literal[5, 8, 10]
Style = Literal["anime", "3d_animation", "clay", "comic", "cyberpunk"]
ModelVersion = Literal["v5", "v5.5"]
PromptReasoning = Literal["enabled", "disabled", "auto"]
Voice = Literal[
    "Harper",
    "Ava",
    "Isabella",
    "Sophia",
    "Emily",
    "Chloe",
    "Julia",
    "Mason",
    "Jack",
    "Liam",
    "James",
    "Oliver",
    "Adrian",
    "Ethan",
    "Auto",
]

ASPECT_RATIOS: Final[tuple[str, ...]] = get_args(AspectRatio)
RESOLUTIONS: Final[tuple[str, ...]] = get_args(Resolution)
DURATIONS: Final[tuple[int, ...]] = get_args(Duration)
STYLES: Final[tuple[str, ...]] = get_args(Style)
VOICES: Final[tuple[str, ...]] = get_args(Voice)

DEFAULT_ASPECT_RATIO: Final[AspectRatio] = "16:9"
DEFAULT_RESOLUTION: Final[Resolution] = "720p"
DEFAULT_DURATION: Final[Duration] = 5

# The models, by what the inputs ask for. v5.5 has no transition; 10 s exists on v5.5 only.
MODEL_ID: Final = "pixverse/v5/text-to-video"
LIP_SYNC_MODEL: Final = "pixverse/lip-sync"
MODELS: Final[dict[tuple[str, str], str]] = {
    ("v5", "text"): MODEL_ID,
    ("v5", "image"): "pixverse/v5/image-to-video",
    ("v5", "transition"): "pixverse/v5/transition",
    ("v5.5", "text"): "pixverse/v5.5/text-to-video",
    ("v5.5", "image"): "pixverse/v5.5/image-to-video",
}
ALL_MODELS: Final[tuple[str, ...]] = (*MODELS.values(), LIP_SYNC_MODEL)

# PixVerse's documented prompt limit; the API answers 400 beyond it, so we refuse first and spend nothing.
MAX_PROMPT_LENGTH: Final = 2048
# The provider documents seeds as a signed 32-bit integer.
MAX_SEED: Final = 2_147_483_647
# Generation ids look like "<uuid>:pixverse/v5/text-to-video"; this bound only stops absurd input early.
MAX_GENERATION_ID_LENGTH: Final = 256
# An input (an image, a video, a sound) named by URL, path or data URI: a data URI of the largest file we send
# (`defaults.MAX_INPUT_MB`) fits; the size of what it holds is checked where it is read (`inputs.py`).
MAX_INPUT_REFERENCE_LENGTH: Final = 90_000_000
# At least one character that is not white space: a blank prompt is refused by the published schema itself.
NOT_BLANK: Final = r"\S"
# Unicode categories of characters that show something: letters, marks, numbers, punctuation, symbols.
_VISIBLE: Final = frozenset("LMNPS")
# What the provider bills in: 2,000,000 credits to the US dollar (its pricing pages).
CREDITS_PER_USD: Final = 2_000_000
# No PixVerse video costs anywhere near this: a reported cost above it is a misreading, not a price.
MAX_PLAUSIBLE_COST_USD: Final = 100.0
# Nor anywhere near this little (the cheapest, 5 s at 360p, is $0.14): a figure below it is a unit mixed up (credits
# read as dollars), and counted as reported it would become the estimate of its size and let the cap go unheard.
MIN_PLAUSIBLE_COST_USD: Final = 0.01
# Fields of the v5.5 models only, and of the v5 models only (the published names, then the API's).
V55_FIELDS: Final = ("generate_audio", "multi_clip", "prompt_reasoning")
LIP_SYNC_FIELDS: Final = ("lip_sync_text", "lip_sync_voice")


def request_size(body: Mapping[str, Any] | None) -> tuple[str, int]:
    """(resolution, duration) of a journaled request body: the defaults where it has none (or odd ones)."""
    resolution = body.get("resolution", DEFAULT_RESOLUTION) if body else DEFAULT_RESOLUTION
    duration = body.get("duration", DEFAULT_DURATION) if body else DEFAULT_DURATION
    if not isinstance(resolution, str) or not isinstance(duration, int) or isinstance(duration, bool):
        return DEFAULT_RESOLUTION, DEFAULT_DURATION
    return resolution, duration


def request_model(body: Mapping[str, Any] | None) -> str:
    """The model of a journaled request body (v5 text-to-video for the journals of older versions)."""
    model = body.get("model") if body else None
    return model if isinstance(model, str) else MODEL_ID


def reported_cost_usd(usd_header: str | None, usage: Mapping[str, Any] | None) -> float | None:
    """What a create's answer says it cost, in US dollars: the first readable of the `x-aimlapi-usd-spent` header,
    `meta.usage.usd_spent`, and `credits_used` (older answers: `tokens_used`) at `CREDITS_PER_USD`. None when none
    is readable: missing, not a number, negative, zero, not finite, or absurdly small or large. (A cap counting
    such an answer as $0 would stop capping; the caller keeps its estimate instead.)"""
    candidates: list[object] = []
    if usd_header is not None:
        with contextlib.suppress(ValueError):
            candidates.append(float(usd_header.strip()))
    if usage:
        candidates.append(usage.get("usd_spent"))
        for name in ("credits_used", "tokens_used"):
            credits = usage.get(name)
            candidates.append(credits / CREDITS_PER_USD if _is_number(credits) else None)
    for value in candidates:
        if (plausible := plausible_cost_usd(value)) is not None:
            return plausible
    return None


def plausible_cost_usd(value: object) -> float | None:
    """`value` as the cost of one video in US dollars, or None when no video costs that (not a number, not finite,
    below `MIN_PLAUSIBLE_COST_USD` or above `MAX_PLAUSIBLE_COST_USD`): for every figure that reaches the cap, from
    an answer, the request log, the price list or the journal."""
    if _is_number(value) and math.isfinite(value) and MIN_PLAUSIBLE_COST_USD <= value <= MAX_PLAUSIBLE_COST_USD:
        return float(value)
    return None


def _listed(names: list[str]) -> str:
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def _integer_only(value: object) -> object:
    """JSON says integer: refuse "5" and 5.0 as the seed is refused, instead of guessing what was meant."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Input should be an integer")
    return value


def _visible_text(value: str) -> str:
    # Python's idea of white space (it includes the \x1c-\x1f separators), the same as the API's; and a text of
    # only invisible or control characters (zero-width spaces, BOMs, NULs) says nothing either: refused, not paid.
    if not any(unicodedata.category(character)[0] in _VISIBLE for character in value):
        raise ValueError("must contain some text, not only spaces or invisible characters")
    return value.strip()


def _valid_unicode(value: str | None) -> str | None:
    if value is not None and clean_text(value) != value:
        raise ValueError("contains a character that is not valid text (a lone surrogate or NUL)")
    return value


class VideoRequest(BaseModel):
    """One video request (text, first frame, or first and last frames; v5 or v5.5), validated to the letter before
    anything is sent.

    The one source of the video parameters: their order, allowed values, defaults and descriptions here are what
    the MCP tools publish (`arguments.bind_settings`) and what `pixverse-mcp generate --help` lists. The seven of
    the first version come first, in their order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_LENGTH,
        pattern=NOT_BLANK,
        description="What the video shows: subject, action, setting, camera, light. English works best. "
        f"At most {MAX_PROMPT_LENGTH} characters.",
    )
    aspect_ratio: AspectRatio | None = Field(
        default=None,
        description="Frame shape: 16:9 landscape (the default), 9:16 vertical, 1:1 square. Text-to-video only: "
        "with an image, the image's own shape is used.",
    )
    resolution: Resolution = Field(
        default=DEFAULT_RESOLUTION,
        description="Short side of the frame. Higher takes longer and costs more; 1080p has no 8 s.",
    )
    duration: Annotated[Duration, BeforeValidator(_integer_only)] = Field(
        default=DEFAULT_DURATION,
        description="Clip length in seconds: 5 or 8 (8 is not available at 1080p); 10 on v5.5 only.",
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
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INPUT_REFERENCE_LENGTH,
        description="Animate an image: the video's first frame. An https:// URL, a data:image/...;base64, URI, or "
        "the path of a PNG, JPEG or WebP file on this machine (inside the client's roots or the server's input "
        "folders).",
    )
    last_frame: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INPUT_REFERENCE_LENGTH,
        description="With image: the video's last frame, for a transition between the two (v5 only). Same forms "
        "as image.",
    )
    model_version: ModelVersion = Field(
        default="v5",
        description="PixVerse v5 (the default) or v5.5 (adds 10 s clips, sound, multi-clip and prompt reasoning).",
    )
    generate_audio: bool | None = Field(
        default=None, strict=True, description="v5.5 only: also generate sound for the video (default false)."
    )
    multi_clip: bool | None = Field(
        default=None,
        strict=True,
        description="v5.5 only: several shots with camera changes instead of one (default false).",
    )
    prompt_reasoning: PromptReasoning | None = Field(
        default=None,
        description="v5.5 only: let the model rework the prompt (enabled, the provider's default), keep it as "
        "written (disabled), or decide (auto).",
    )
    lip_sync_text: str | None = Field(
        default=None,
        max_length=MAX_PROMPT_LENGTH,
        description="v5 only: words a character in the video speaks, lip-synced.",
    )
    lip_sync_voice: Voice | None = Field(
        default=None, description="v5 only, with lip_sync_text: the voice that speaks it (default Auto)."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        return _visible_text(value)

    @field_validator("lip_sync_text")
    @classmethod
    def _spoken_text_has_text(cls, value: str | None) -> str | None:
        return _visible_text(value) if value is not None else None

    @field_validator("prompt", "negative_prompt", "lip_sync_text")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        return _valid_unicode(value)

    @field_validator("negative_prompt")
    @classmethod
    def _blank_negative_prompt_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _fields_fit_the_model(self) -> VideoRequest:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> list[str]:
        """Every combination the chosen model cannot take, each naming the fields and what to do instead."""
        problems = []
        v55 = self.model_version == "v5.5"
        if self.resolution == "1080p" and self.duration == 8:
            problems.append(
                "1080p videos cannot be 8 seconds long: use duration 5 with 1080p, or resolution 360p, 540p or 720p "
                "for an 8-second video"
            )
        if self.duration == 10 and not v55:
            problems.append('duration 10 needs model_version "v5.5" (v5 makes 5 or 8 s videos)')
        given = [name for name in V55_FIELDS if getattr(self, name) is not None]
        if given and not v55:
            problems.append(f'{_listed(given)} {"needs" if len(given) == 1 else "need"} model_version "v5.5"')
        spoken = [name for name in LIP_SYNC_FIELDS if getattr(self, name) is not None]
        if spoken and v55:
            problems.append(f'{_listed(spoken)} {"works" if len(spoken) == 1 else "work"} on model_version "v5" only')
        if self.lip_sync_voice is not None and self.lip_sync_text is None:
            problems.append("lip_sync_voice needs lip_sync_text (the words to speak)")
        if self.last_frame is not None and self.image is None:
            problems.append("last_frame needs image (the first frame of the transition)")
        if self.last_frame is not None and v55:
            problems.append('last_frame (a transition) works on model_version "v5" only')
        if self.aspect_ratio is not None and self.image is not None:
            problems.append("aspect_ratio cannot be set with an image: the video takes the image's shape")
        return problems

    @property
    def kind(self) -> Literal["text", "image", "transition"]:
        """What the inputs ask for."""
        if self.image is None:
            return "text"
        return "transition" if self.last_frame is not None else "image"

    @property
    def model(self) -> str:
        """The model this request goes to."""
        return MODELS[(self.model_version, self.kind)]

    def to_body(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body of the create request for this request's model.

        `inputs` gives what to send for `image` and `last_frame` (a URL or a data URI, once a local file has been
        read); without it they are sent as given (a URL or data URI). The journal passes descriptions instead.
        """
        sent = {**{name: getattr(self, name) for name in ("image", "last_frame")}, **(inputs or {})}
        body: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        if self.kind == "text":
            body["aspect_ratio"] = self.aspect_ratio or DEFAULT_ASPECT_RATIO
        else:
            body["image_url"] = sent["image"]
        if self.kind == "transition":
            body["tail_image_url"] = sent["last_frame"]
        body["resolution"] = self.resolution
        body["duration"] = self.duration
        optional = {
            "negative_prompt": self.negative_prompt,
            "style": self.style,
            "seed": self.seed,
            "lip_sync_tts_content": self.lip_sync_text,
            "lip_sync_tts_speaker": self.lip_sync_voice,
            "generate_audio_switch": self.generate_audio,
            "generate_multi_clip_switch": self.multi_clip,
            "thinking_type": self.prompt_reasoning,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return body


class LipSyncRequest(BaseModel):
    """Lip-sync an existing video to a sound or to spoken words (the `pixverse/lip-sync` model)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    video: str = Field(
        min_length=1,
        max_length=MAX_INPUT_REFERENCE_LENGTH,
        description="The video to lip-sync: a generation_id from this server's journal (a video made here), an "
        "https:// URL, or the path of a video file on this machine (inside the client's roots or the server's "
        "input folders).",
    )
    audio: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INPUT_REFERENCE_LENGTH,
        description="The sound to lip-sync to: an https:// URL, a data:audio/...;base64, URI, or the path of an "
        "audio file on this machine. Or give lip_sync_text instead.",
    )
    lip_sync_text: str | None = Field(
        default=None,
        max_length=MAX_PROMPT_LENGTH,
        description="Or: the words to speak (with lip_sync_voice).",
    )
    lip_sync_voice: Voice | None = Field(
        default=None, description="The voice that speaks lip_sync_text (default Auto)."
    )

    @field_validator("lip_sync_text")
    @classmethod
    def _spoken_text_has_text(cls, value: str | None) -> str | None:
        return _valid_unicode(_visible_text(value)) if value is not None else None

    @model_validator(mode="after")
    def _one_sound(self) -> LipSyncRequest:
        if (self.audio is None) == (self.lip_sync_text is None):
            raise ValueError("give either audio (a sound to lip-sync to) or lip_sync_text (words to speak), not both")
        if self.lip_sync_voice is not None and self.lip_sync_text is None:
            raise ValueError("lip_sync_voice needs lip_sync_text (the words to speak)")
        return self

    @property
    def model(self) -> str:
        """The model this request goes to."""
        return LIP_SYNC_MODEL

    def to_body(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body: `inputs` gives what to send for `video` and `audio` (a URL or a data URI)."""
        sent = {"video": self.video, "audio": self.audio, **(inputs or {})}
        body: dict[str, Any] = {"model": LIP_SYNC_MODEL, "video_url": sent["video"]}
        if self.audio is not None:
            body["audio_url"] = sent["audio"]
        else:
            body["lip_sync_tts_content"] = self.lip_sync_text
            body["lip_sync_tts_speaker"] = self.lip_sync_voice or "Auto"
        return body


AnyRequest = VideoRequest | LipSyncRequest


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
    cost_usd: float | None = None
    """What the create's answer said it cost (its cost header, else `usage`), when readable (`reported_cost_usd`)."""

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
