"""The published input schemas stay within what every client translates (`arguments.portable_schema`).

Gemini's function declarations are the narrowest (google-genai turns an MCP tool's input schema into its
`types.Schema`, an OpenAPI 3.0 subset whose `enum` holds strings only, and fails on a boolean
`additionalProperties`). `subset_problems` states that subset as checks, and every tool the server publishes,
app-only ones included, must pass them: a new parameter that needs another rule fails here. The frameworks' own
clients are driven end to end in `tests/e2e/test_frameworks.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator
from pydantic import SecretStr

from pixverse_mcp.arguments import portable_schema
from pixverse_mcp.config import Settings
from pixverse_mcp.explain import allowed_values
from pixverse_mcp.server import build_server

# Keywords Gemini's `Schema` has no field for, or reads differently (google-genai 3.6 drops or chokes on them).
NOT_IN_THE_SUBSET = ("const", "oneOf", "allOf", "not", "$ref", "prefixItems", "patternProperties")


def subset_problems(schema: Any, path: str = "$") -> Iterator[str]:
    """Where `schema` leaves the subset every client translates, one line per problem."""
    if not isinstance(schema, dict):
        yield f"{path}: a boolean schema"
        return
    if isinstance(schema.get("additionalProperties"), bool):
        yield f"{path}: a boolean additionalProperties"
    if any(not isinstance(value, str) for value in schema.get("enum", [])):
        yield f"{path}: an enum with values that are not strings: {schema['enum']}"
    for keyword in NOT_IN_THE_SUBSET:
        if keyword in schema:
            yield f"{path}: {keyword}"
    for name, sub in schema.get("properties", {}).items():
        yield from subset_problems(sub, f"{path}.{name}")
    for index, sub in enumerate(schema.get("anyOf", [])):
        yield from subset_problems(sub, f"{path}.anyOf[{index}]")
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            yield from subset_problems(schema[keyword], f"{path}.{keyword}")


def accepts_the_same(before: dict[str, Any], after: dict[str, Any], values: list[Any]) -> None:
    for value in values:
        assert Draft202012Validator(before).is_valid(value) == Draft202012Validator(after).is_valid(value), value


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every tool's input schema as the server publishes it, app-only tools included."""
    state: Path = tmp_path_factory.mktemp("schemas")
    server = build_server(Settings(api_key=SecretStr("unused"), state_dir=state))
    return {tool.name: tool.input_schema for tool in anyio.run(server.list_tools)}


def test_every_published_input_schema_fits_the_subset(published: dict[str, dict[str, Any]]) -> None:
    assert {"create_video", "generate_video_blocking", "video_player_status"} <= set(published)
    problems = [f"{name}: {problem}" for name, schema in published.items() for problem in subset_problems(schema)]
    assert problems == []


def test_boolean_additional_properties_are_dropped_at_every_depth() -> None:
    nested = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"inner": nested, "many": {"type": "array", "items": nested}, "maybe": {"anyOf": [nested]}},
    }

    portable = portable_schema(schema)

    assert list(subset_problems(portable)) == []
    assert portable["properties"]["inner"] == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert "additionalProperties" not in portable["properties"]["many"]["items"]
    assert schema["additionalProperties"] is nested["additionalProperties"] is False  # the input is not changed


def test_a_schema_valued_additional_properties_is_kept() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer", "enum": [1, 2]}}

    portable = portable_schema(schema)

    assert portable["additionalProperties"]["anyOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 1},
        {"type": "integer", "minimum": 2, "maximum": 2},
    ]


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ({"type": "integer", "enum": [5, 8, 10], "default": 5}, "integer"),
        ({"enum": [5, 8]}, "integer"),
        ({"type": "number", "enum": [0.5, 1, 2.5]}, "number"),
        ({"enum": [0.5, 1]}, "number"),
    ],
    ids=["integer", "untyped-integer", "number", "untyped-number"],
)
def test_a_number_enum_becomes_one_value_ranges_that_allow_exactly_the_same(schema: dict[str, Any], kind: str) -> None:
    portable = portable_schema(schema)

    assert "enum" not in portable
    assert portable["type"] == kind
    assert portable["anyOf"] == [{"type": kind, "minimum": value, "maximum": value} for value in schema["enum"]]
    assert portable.get("default") == schema.get("default")
    assert list(subset_problems(portable)) == []
    accepts_the_same(schema, portable, [*range(-1, 12), 0.5, 1.0, 2.5, 5.0, 5.5, "5", True, None])


def test_a_nullable_integer_enum_keeps_its_null() -> None:
    schema = {"anyOf": [{"type": "integer", "enum": [5, 8]}, {"type": "null"}], "default": None}

    portable = portable_schema(schema)

    assert list(subset_problems(portable)) == []
    accepts_the_same(schema, portable, [None, 5, 8, 6, "5"])
    assert allowed_values(portable) == "5, 8"


def test_string_enums_and_everything_else_are_kept_as_they_are() -> None:
    schema = {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "maxLength": 10, "pattern": "\\S"},
            "style": {"anyOf": [{"type": "string", "enum": ["anime", "clay"]}, {"type": "null"}], "default": None},
            "seed": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"type": "null"}]},
            "force": {"type": "boolean", "default": False},
            # Parameters whose names are keywords are still parameters.
            "enum": {"type": "integer", "enum": [1, 2]},
            "additionalProperties": {"type": "boolean"},
        },
    }

    portable = portable_schema(schema)

    assert {name: portable["properties"][name] for name in ("prompt", "style", "seed", "force")} == {
        name: schema["properties"][name] for name in ("prompt", "style", "seed", "force")
    }
    assert portable["properties"]["additionalProperties"] == {"type": "boolean"}
    assert "anyOf" in portable["properties"]["enum"]
    assert portable["required"] == ["prompt"]


def test_an_enum_of_mixed_types_is_left_for_the_subset_check_to_catch() -> None:
    schema = {"type": "object", "properties": {"size": {"enum": ["auto", 5]}}}

    assert list(subset_problems(portable_schema(schema))) == [
        "$.size: an enum with values that are not strings: ['auto', 5]"
    ]


def test_refusals_still_list_a_number_enum_as_its_values() -> None:
    portable = portable_schema({"type": "integer", "enum": [5, 8], "default": 5})

    assert allowed_values(portable) == "5, 8; default 5"
