"""Invalid input explained in plain words: which field, what is wrong, and what is allowed, read from the schema that
is published for it (so the explanation can never disagree with the schema).

Used by the MCP tools and by the terminal; it imports nothing heavier than pydantic.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import ValidationError

from pixverse_mcp.models import VideoRequest

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
        allowed = allowed_values((properties or {}).get(str(error["loc"][0]) if error["loc"] else "", {}))
        described = f"`{field}`: {message}" if field else message
        problems.append(f"{described} (allowed: {allowed})" if allowed else described)
    return "; ".join(problems)


def allowed_values(schema: dict[str, Any]) -> str | None:
    """What the published schema allows for one argument, in words: its enum, range or length."""
    for option in (schema, *schema.get("anyOf", [])):
        listed = _listed_values(option)
        if listed is not None:
            values = ", ".join(json.dumps(value) for value in listed)
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


def _listed_values(option: dict[str, Any]) -> list[Any] | None:
    """The values an option lists: its `enum`, or the one-value ranges a number enum is published as (see
    `arguments.portable_schema`)."""
    if "enum" in option:
        values: list[Any] = option["enum"]
        return values
    ranges = option.get("anyOf", [])
    if ranges and all(
        isinstance(point, dict) and "minimum" in point and point.get("maximum") == point["minimum"] for point in ranges
    ):
        return [point["minimum"] for point in ranges]
    return None


def _number(value: float) -> str:
    """2147483647, not 2.14748e+09: an agent copies these bounds."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@functools.cache
def request_properties() -> dict[str, Any]:
    """VideoRequest's schema properties, built on first use rather than at start-up."""
    properties: dict[str, Any] = VideoRequest.model_json_schema()["properties"]
    return properties
