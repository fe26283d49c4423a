"""The tools' arguments as agents see them, and how invalid ones are explained.

The types inline every allowed value and default into the published input schema. `StrictArgumentsTool` checks
arguments before the tool body runs, so invalid input is refused with a plain message and never reaches the network.
"""

# No `from __future__ import annotations`: the SDK evaluates these annotations at registration.

import functools
import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import Field, ValidationError

from pixverse_mcp.models import (
    MAX_GENERATION_ID_LENGTH,
    MAX_PROMPT_LENGTH,
    MAX_SEED,
    AspectRatio,
    Duration,
    Resolution,
    Style,
    VideoRequest,
)

# At least one character that is not white space: a blank prompt or id is refused by the schema itself.
NOT_BLANK = r"\S"

PromptArg = Annotated[
    str,
    Field(
        min_length=1,
        pattern=NOT_BLANK,
        max_length=MAX_PROMPT_LENGTH,
        description="What the video shows: subject, action, setting, camera, light. English works best. "
        f"At most {MAX_PROMPT_LENGTH} characters.",
    ),
]
AspectRatioArg = Annotated[AspectRatio, Field(description="Frame shape: 16:9 landscape, 9:16 vertical, 1:1 square.")]
ResolutionArg = Annotated[
    Resolution, Field(description="Short side of the frame. Higher takes longer and costs more; 1080p is 5 s only.")
]
DurationArg = Annotated[Duration, Field(description="Clip length in seconds: 5 or 8 (8 is not available at 1080p).")]
NegativePromptArg = Annotated[
    str | None, Field(max_length=MAX_PROMPT_LENGTH, description="What the video should avoid (optional).")
]
StyleArg = Annotated[Style | None, Field(description="Optional visual style; omit for a realistic look.")]
SeedArg = Annotated[
    int | None,
    Field(ge=0, le=MAX_SEED, strict=True, description="Optional; the same seed and request give a similar video."),
]
GenerationIdArg = Annotated[
    str,
    Field(
        min_length=1,
        pattern=NOT_BLANK,
        max_length=MAX_GENERATION_ID_LENGTH,
        description="The generation_id a create_video or generate_video_blocking call returned.",
    ),
]


# GenerationStatus's values as a Literal, so the schema inlines them (a test keeps the two equal).
StatusName = Literal["queued", "generating", "completed", "failed", "unknown"]
StatusFilterArg = Annotated[StatusName | None, Field(description="Only videos with this status (default: all).")]
ListLimitArg = Annotated[int, Field(ge=1, le=100, strict=True, description="How many, newest first.")]


class StrictArgumentsTool(Tool):
    """A tool that refuses unknown arguments and explains invalid ones in plain words, naming the allowed values.

    The SDK would ignore a misspelt argument (a wrong-sized video the user pays for) and answers invalid ones with
    pydantic's raw text; both checks run here, before the tool body, so nothing is ever sent for bad input. The
    published schema says so too (`additionalProperties: false`). Non-string arguments are declared `strict`, so
    `true` is not taken for 1, nor 0 for `false`.
    """

    def model_post_init(self, context: Any, /) -> None:
        self.parameters["additionalProperties"] = False

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        properties: dict[str, Any] = self.parameters.get("properties", {})
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            raise ToolError(
                f"Unknown argument(s) for {self.name}: {', '.join(unknown)}. "
                f"Allowed arguments: {', '.join(properties)}."
            )
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            raise ToolError(f"Invalid arguments for {self.name}: {describe_validation_error(exc, properties)}") from exc
        return await super().run(arguments, context, convert_result=convert_result)


# pydantic's wording where it would confuse: a blank string fails our "some text" pattern, or min_length once stripped.
_PLAIN_MESSAGES = {
    "missing": "is required",
    "string_pattern_mismatch": "must contain some text, not only spaces",
    "string_too_short": "must contain some text, not only spaces",
}


def describe_validation_error(exc: ValidationError, properties: dict[str, Any] | None = None) -> str:
    """Each problem as "`field`: what is wrong (allowed: ...)", without echoing the rejected value."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"])
        message = _PLAIN_MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
        allowed = _allowed_values((properties or {}).get(str(error["loc"][0]) if error["loc"] else "", {}))
        described = f"`{field}`: {message}" if field else message
        problems.append(f"{described} (allowed: {allowed})" if allowed else described)
    return "; ".join(problems)


def _allowed_values(schema: dict[str, Any]) -> str | None:
    """What the published schema allows for one argument, in words: its enum, range or length."""
    for option in (schema, *schema.get("anyOf", [])):
        if "enum" in option:
            values = ", ".join(json.dumps(value) for value in option["enum"])
            default = schema.get("default")
            return f"{values}; default {json.dumps(default)}" if default is not None else values
        if "minimum" in option or "maximum" in option:
            kind = "an integer" if option.get("type") == "integer" else "a number"
            low, high = option.get("minimum"), option.get("maximum")
            if low is not None and high is not None:
                return f"{kind} from {_number(low)} to {_number(high)}"
            return f"{kind} of at least {_number(low)}" if low is not None else f"{kind} of at most {_number(high)}"
        if "maxLength" in option:
            return f"{option.get('minLength', 0)} to {option['maxLength']} characters"
    return None


def _number(value: float) -> str:
    """2147483647, not 2.14748e+09: an agent copies these bounds."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def video_request(**fields: Any) -> VideoRequest:
    """The validated request, or a `ToolError` that says what is allowed (the cross-field rules live here)."""
    try:
        return VideoRequest(**fields)
    except ValidationError as exc:
        raise ToolError(f"Invalid video request: {describe_validation_error(exc, _request_properties())}") from exc


@functools.cache
def _request_properties() -> dict[str, Any]:
    """VideoRequest's schema properties, built on the first invalid request rather than at start-up."""
    properties: dict[str, Any] = VideoRequest.model_json_schema()["properties"]
    return properties
