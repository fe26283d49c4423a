"""The tools' arguments as agents see them, and how invalid ones are explained.

The types inline every allowed value and default into the published input schema, which `portable_schema` keeps
within what every client translates. `StrictArgumentsTool` checks arguments before the tool body runs, so invalid
input is refused with a plain message and never reaches the network.
"""

# No `from __future__ import annotations`: the SDK evaluates these annotations at registration.

import functools
import inspect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult
from pydantic import BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo

from pixverse_mcp.explain import allowed_values, describe_validation_error
from pixverse_mcp.models import MAX_GENERATION_ID_LENGTH, NOT_BLANK, LipSyncRequest, VideoRequest
from pixverse_mcp.results import not_created_result, refusal_result, safe_result

logger = logging.getLogger(__name__)
# How the SDK says a resolver got an answer it cannot use (an accepted form without content, say).
_UNUSABLE_ANSWER = re.compile(r"Resolver '[^']+' received")


@dataclass(frozen=True)
class AtMost:
    """A bound that comes from a setting (`AtMost("max_wait_seconds")`), filled in when the tool is registered."""

    setting: str


GenerationIdArg = Annotated[
    str,
    Field(
        min_length=1,
        pattern=NOT_BLANK,
        max_length=MAX_GENERATION_ID_LENGTH,
        description="The generation_id a create_video or generate_video_blocking call returned.",
    ),
]
# Descriptions may name settings ({budget}, {saving}): `bind_settings` fills them in at registration.
SaveToDiskArg = Annotated[
    bool | None,
    Field(
        strict=True,
        description="Also download the finished video to this machine and report its path (default: {saving}).",
    ),
]
WaitSecondsArg = Annotated[
    float,
    Field(
        ge=0,
        strict=True,
        description="0 (default) looks once and returns. More waits up to that many seconds for the video to "
        "finish, with progress; keep it at {budget} or less so the call ends before the host's time limit.",
    ),
    AtMost("max_wait_seconds"),
]
TimeoutSecondsArg = Annotated[
    float | None,
    Field(
        ge=1,
        strict=True,
        description="How long to wait before returning (default {budget} s, which ends before a host's usual 60 s "
        "limit). If the video is not ready by then the result says so and gives the generation_id to continue "
        "with; nothing is lost.",
    ),
    AtMost("max_wait_seconds"),
]


# GenerationStatus's values as a Literal, so the schema inlines them (a test keeps the two equal).
StatusName = Literal["queued", "generating", "completed", "failed", "unknown"]
StatusFilterArg = Annotated[StatusName | None, Field(description="Only videos with this status (default: all).")]
ListLimitArg = Annotated[int, Field(ge=1, le=100, strict=True, description="How many, newest first.")]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (VideoRequest, LipSyncRequest)
"""Request models a tool parameter may stand for: their fields are published flat, in the model's order."""


def bind_settings(fn: Callable[..., Any], values: Mapping[str, Any]) -> Callable[..., Any]:
    """A copy of the tool function `fn` as agents will see it under these settings.

    A parameter whose type is a request model (`video: VideoRequest`) becomes that model's fields themselves, in
    its order with its defaults and descriptions (the model is their one source); the tool receives the validated
    request (checked beforehand by `StrictArgumentsTool.refusal`). `AtMost` bounds and `{name}` placeholders in
    descriptions and in the docstring are filled from `values` (the settings' numbers, as words). The copy keeps
    the model as `request_model`.
    """
    signature = inspect.signature(fn)
    parameters: list[inspect.Parameter] = []
    request: tuple[str, type[BaseModel]] | None = None
    for parameter in signature.parameters.values():
        if parameter.annotation in REQUEST_MODELS:
            request = (parameter.name, parameter.annotation)
            parameters += _model_parameters(parameter.annotation)
        else:
            parameters.append(parameter.replace(annotation=_filled(parameter.annotation, values)))

    @functools.wraps(fn)
    async def bound(**arguments: Any) -> Any:
        if request is not None:
            name, model = request
            arguments[name] = model(**{field: arguments.pop(field) for field in model.model_fields})
        return await fn(**arguments)

    bound.request_model = request[1] if request else None  # type: ignore[attr-defined]
    # The SDK reads both the signature and the annotations: give it the published ones, not the original's.
    del bound.__wrapped__
    bound.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    bound.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    bound.__annotations__["return"] = signature.return_annotation
    bound.__doc__ = inspect.cleandoc(fn.__doc__ or "").format_map(values)
    return bound


@functools.cache
def _model_parameters(model: type[BaseModel]) -> list[inspect.Parameter]:
    parameters = []
    for name, field in model.model_fields.items():
        published = Field(description=field.description)
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=Annotated[(field.annotation, *field.metadata, published)],
                default=inspect.Parameter.empty if field.is_required() else field.default,
            )
        )
    return parameters


def _filled(annotation: Any, values: Mapping[str, Any]) -> Any:
    """`annotation` with its `AtMost` markers turned into bounds and its description's placeholders filled."""
    if get_origin(annotation) is not Annotated:
        return annotation
    base, *metadata = get_args(annotation)
    filled: list[Any] = []
    for item in metadata:
        if isinstance(item, AtMost):
            filled.append(Field(le=values[item.setting]))
        else:
            filled.append(item)
            if isinstance(item, FieldInfo) and item.description:
                filled.append(Field(description=item.description.format_map(values)))  # the later one wins
    return Annotated[(base, *filled)]


# Keywords whose value is a map of schemas, a list of schemas, or one schema (everything else is data or a number).
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_VALUES = frozenset({"items", "additionalProperties", "not"})


def portable_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as every client we know can translate it: the one post-processing of published input schemas.

    Agent frameworks turn an input schema into their model's function declaration, and Gemini's (google-genai's
    `_mcp_utils.mcp_to_gemini_tool`, into `types.Schema`, an OpenAPI 3.0 subset) is the narrowest. Two things plain
    JSON Schema allows break it, so, at every depth:

    - A boolean `additionalProperties` is dropped: google-genai reads it as a schema and fails on every tool
      (`'bool' object has no attribute 'items'`). Unknown arguments stay refused: `StrictArgumentsTool` refuses
      them at run time, before anything is sent, naming the allowed ones; OpenAI's strict conversion adds
      `additionalProperties: false` back by itself.
    - An `enum` of numbers becomes an `anyOf` of one-value ranges under the same type (`{"type": "integer",
      "anyOf": [{"type": "integer", "minimum": 5, "maximum": 5}, ...]}`): Gemini's `enum` holds strings only,
      while `anyOf`, `minimum` and `maximum` are in its subset and in OpenAI's strict one, so every client still
      sees exactly the allowed values. The type stays on the parent too, so clients that convert typed-in text by
      the property's type (the MCP Inspector) still send a number. Stringified values (`["5", "8"]`) would be a
      trap: the model would answer "5", which an integer argument refuses.

    Anything else is kept as it is; `tests/unit/test_portable_schemas.py` checks every published schema against
    the subset, so a new kind of parameter that needs another rule fails there, not in someone's agent.
    """
    portable: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "additionalProperties" and isinstance(value, bool):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {name: _portable(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            value = [_portable(sub) for sub in value]
        elif key in _SCHEMA_VALUES:
            value = _portable(value)
        portable[key] = value
    values = portable.get("enum")
    if values and "anyOf" not in portable and all(_is_number(value) for value in values):
        kind = portable.get("type") or ("integer" if all(isinstance(value, int) for value in values) else "number")
        del portable["enum"]
        portable["type"] = kind
        portable["anyOf"] = [{"type": kind, "minimum": value, "maximum": value} for value in values]
    return portable


def _json_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a published property allows (its own and its `anyOf` options')."""
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        found |= _json_types(option)
    return found


def _portable(schema: Any) -> Any:
    return portable_schema(schema) if isinstance(schema, dict) else schema


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class StrictArgumentsTool(Tool):
    """A tool that refuses unknown arguments and explains invalid ones in plain words, naming the allowed values, and
    whose every result can be sent.

    The SDK would ignore a misspelt argument (a wrong-sized video the user pays for) and answers invalid ones with
    pydantic's raw text; both checks run here, before the tool body, so nothing is ever sent for bad input, whatever
    the client made of the schema (published through `portable_schema`, which cannot say `additionalProperties:
    false`). Non-string arguments are declared `strict`, so `true` is not taken for 1, nor 0 for `false`. A crash in
    a tool becomes one plain sentence (the details go to the log), and every result passes `safe_result` on its way
    out.
    """

    def model_post_init(self, context: Any, /) -> None:
        self.parameters = portable_schema(self.parameters)

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        refusal = self.refusal(arguments)
        if refusal is not None:
            return refusal_result(f"Invalid arguments for {self.name}: {refusal}")
        try:
            result = await super().run(arguments, context, convert_result=convert_result)
        except ToolError as exc:
            if _UNUSABLE_ANSWER.search(str(exc)):  # the SDK's words for an answer to a question it cannot use
                logger.warning("tool %s: %s", self.name, exc)
                return not_created_result(
                    "The answer to the question before paying could not be read: nothing was created or charged. "
                    "Call again to ask the user again."
                )
            logger.exception("tool %s failed unexpectedly", self.name)
            return refusal_result(
                f"{self.name} failed unexpectedly inside pixverse-mcp (the server's log has the details). "
                "If a generation was started, list_videos shows its id."
            )
        return safe_result(result) if isinstance(result, CallToolResult) else result

    def refusal(self, arguments: dict[str, Any]) -> str | None:
        """Why these arguments cannot be used (unknown, invalid, or an impossible video), or None."""
        properties: dict[str, Any] = self.parameters.get("properties", {})
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            return f"unknown argument(s) {', '.join(unknown)}. Allowed arguments: {', '.join(properties)}."
        for name, value in arguments.items():
            # The SDK reads a string that holds JSON ("null", "[1]") as that JSON: text is refused here first.
            types = _json_types(properties[name])
            if isinstance(value, str) and types and "string" not in types:
                allowed = allowed_values(properties[name])
                described = f"`{name}`: should be {' or '.join(sorted(types))}, not text"
                return f"{described} (allowed: {allowed})" if allowed else described
        try:
            validated = self.fn_metadata.validate_arguments(arguments)
            model: type[BaseModel] | None = getattr(self.fn, "request_model", None)
            if model is not None:
                model(**{name: validated[name] for name in model.model_fields})
        except ValidationError as exc:
            return describe_validation_error(exc, properties)
        return None
