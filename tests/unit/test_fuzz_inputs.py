"""Bad input fuzzed: thousands of argument sets, generated from each tool's own published input schema.

Valid arguments come from the schema `tools/list` publishes (`hypothesis_jsonschema.from_schema`, one property at a
time: its object generation is broken with the installed hypothesis, see `arguments_from`). `create_video` answers
at once, so it carries the valid-case fuzzing: whatever `VideoRequest` accepts must be created, sent exactly as
validated, once; whatever it refuses must be refused with a message naming the field, and nothing sent.

Invalid arguments are valid ones with one mutation (an unknown argument, a value of the wrong type, outside its
enum, out of range, too long or too short, a required one missing), checked to be invalid against the published
schema: each must be refused with a message naming the argument, and reach no API. The server must never crash.

The tools run in process (`Client(build_server(settings))`, driven from a blocking portal so hypothesis can stay
synchronous) against a real sandbox over HTTP, whose counters prove what reached the API. Every test is
derandomized and database-less, so CI sees the same examples on every run.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from mcp import Client
from mcp_types import CallToolResult
from pydantic import SecretStr, ValidationError

from pixverse_mcp.config import Settings
from pixverse_mcp.models import VideoRequest
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox, SandboxConfig
from pixverse_mcp.server import build_server
from tests.stdio_support import text_of

# Hundreds of generated calls each: the full suite runs them, the fast loop (`scripts/test --fast`) does not.
pytestmark = pytest.mark.slow

# The tools of the README, each fuzzed with invalid input; create_video and list_videos with valid input too.
TOOLS = ("create_video", "generate_video_blocking", "get_video_status", "list_videos")
VIDEO_FIELDS = frozenset(VideoRequest.model_fields)
GENERIC_CRASH = re.compile(r"^Error executing tool \w+\s*$")
# A prompt carrying a sandbox directive would make the sandbox misbehave on purpose: not what is fuzzed here.
SANDBOX_DIRECTIVE = "[sandbox:"
# Inputs (a first or a last frame) that can be sent: a URL, and an image inline. Any other string is read at run time
# as a path (refused, naming the field, with nothing sent: tests/unit/test_family.py).
SENDABLE_IMAGES = ("https://example.com/first.png", "data:image/png;base64,iVBORw0KGgoAAAAAAAAAAA==")
# A string argument this long is not worth making longer still (a 90 MB data URI proves nothing more).
LONGEST_MUTATED = 100_000


def fuzz_settings(max_examples: int) -> settings:
    """The same examples on every run (CI must be stable): derandomized, no example database, no deadline."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


@dataclass(repr=False)
class Harness:
    """The in-process server on a real sandbox, callable from synchronous hypothesis tests."""

    portal: BlockingPortal
    client: Client
    sandbox: RunningSandbox
    schemas: dict[str, dict[str, Any]]

    def __repr__(self) -> str:  # hypothesis prints it with every failing example: keep it short
        return f"Harness(sandbox={self.sandbox.url})"

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        result: CallToolResult = self.portal.call(self.client.call_tool, tool, arguments)
        return result

    def upstream_requests(self) -> tuple[int, int]:
        stats = self.sandbox.state.stats()
        return stats["creates"], stats["status_requests"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    state_dir: Path = tmp_path_factory.mktemp("fuzz")
    # Generations finish at once: a blocking call wrongly let through (and each one hypothesis then shrinks) costs
    # milliseconds, not seconds.
    config = SandboxConfig(queued_seconds=0.0, generating_seconds=0.01)
    with RunningSandbox(config) as sandbox, start_blocking_portal("asyncio") as portal:
        server_settings = Settings(
            api_key=SecretStr(SANDBOX_API_KEY),
            base_url=sandbox.url,
            poll_time_scale=0.001,
            state_dir=state_dir,
            wait_budget_seconds=5,
            log_level="WARNING",
        )
        with portal.wrap_async_context_manager(Client(build_server(server_settings))) as client:
            listed = portal.call(client.list_tools)
            schemas = {tool.name: tool.input_schema for tool in listed.tools}
            yield Harness(portal, client, sandbox, schemas)


def properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = schema.get("properties", {})
    return props


def options(subschema: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a property's schema (itself, or each branch of its anyOf)."""
    branches: list[dict[str, Any]] = subschema.get("anyOf", [subschema])
    return branches


def is_valid(schema: dict[str, Any], value: Any) -> bool:
    return bool(Draft202012Validator(schema).is_valid(value))


def allowed_types(subschema: dict[str, Any]) -> set[str]:
    types: set[str] = set()
    for option in options(subschema):
        declared = option.get("type")
        types.update([declared] if isinstance(declared, str) else declared or [])
    return types


def has_json_type(value: Any, types: set[str]) -> bool:
    checker = Draft202012Validator.TYPE_CHECKER
    return any(checker.is_type(value, name) for name in types)


def arguments_from(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Argument sets valid against `schema`: every required property, any subset of the optional ones.

    Each value comes from `from_schema` of that property's published schema. (`from_schema` of the whole object
    would do the same, but hypothesis-jsonschema 0.23.1 fails on objects with the installed hypothesis:
    `AttributeError: 'many' object has no attribute 'more'`.) Only declared properties are drawn: the server
    refuses unknown ones (`test_unknown_arguments_are_refused_naming_them`), though the published schema cannot say
    so (`arguments.portable_schema`).
    """
    required = set(schema.get("required", []))
    props = properties(schema)
    return st.fixed_dictionaries(
        {name: from_schema(props[name]) for name in props if name in required},
        optional={name: from_schema(props[name]) for name in props if name not in required},
    )


def plausible(tool: str, arguments: dict[str, Any]) -> bool:
    """Valid beyond the schema too, so a mutation is the only thing wrong with it."""
    prompt = arguments.get("prompt")
    # Python's idea of blank (which the sandbox shares) is wider than pydantic's strip: keep clear of the border,
    # which the valid-input test explores on its own.
    if isinstance(prompt, str) and (SANDBOX_DIRECTIVE in prompt or not prompt.strip()):
        return False
    if "prompt" in arguments:
        try:
            VideoRequest(**{key: value for key, value in arguments.items() if key in VIDEO_FIELDS})
        except ValidationError:
            return False
    generation_id = arguments.get("generation_id")
    return not (isinstance(generation_id, str) and not generation_id.strip())


def assert_refused_before_any_request(
    harness: Harness, tool: str, arguments: dict[str, Any], names: tuple[str, ...]
) -> str:
    """The call is refused with a message naming the argument, and nothing reached the API."""
    before = harness.upstream_requests()

    result = harness.call(tool, arguments)

    message = text_of(result)
    assert result.is_error, f"{tool} accepted invalid arguments {arguments!r}: {message}"
    assert not GENERIC_CRASH.match(message), f"{tool} crashed on {arguments!r}"
    assert any(name in message for name in names), f"the message does not name {names}: {message}"
    assert harness.upstream_requests() == before, f"{tool} sent a request for invalid arguments {arguments!r}"
    return message


# --- what the schemas say ---------------------------------------------------------------------------------------


def test_every_documented_tool_is_published(harness: Harness) -> None:
    assert set(TOOLS) <= set(harness.schemas)


# --- valid input -------------------------------------------------------------------------------------------------


@fuzz_settings(max_examples=600)
@given(data=st.data())
def test_every_schema_valid_video_request_is_created_once_exactly_as_validated_or_refused_clearly(
    harness: Harness, data: st.DataObject
) -> None:
    arguments = data.draw(arguments_from(harness.schemas["create_video"]), label="arguments")
    assume(SANDBOX_DIRECTIVE not in arguments["prompt"])
    for name in ("image", "last_frame"):
        if isinstance(arguments.get(name), str):
            arguments[name] = data.draw(st.sampled_from(SENDABLE_IMAGES), label=name)
    try:
        expected: VideoRequest | None = VideoRequest(**arguments)
    except ValidationError:
        expected = None
    before = harness.sandbox.state.stats()

    result = harness.call("create_video", arguments)

    after = harness.sandbox.state.stats()
    message = text_of(result)
    event("refused as VideoRequest refuses it" if expected is None else "created")
    if expected is None:
        assert result.is_error, f"accepted what VideoRequest refuses: {arguments!r}"
        assert not GENERIC_CRASH.match(message)
        assert any(word in message for word in [*arguments, "1080p"]), message  # it names what is wrong
        assert after == before
        return
    assert not result.is_error, f"refused a valid request {arguments!r}: {message}"
    assert result.structured_content is not None
    generation_id = result.structured_content["generation_id"]
    assert result.structured_content["status"] == "queued"
    assert after["creates"] == before["creates"] + 1
    assert after["accepted"] == before["accepted"] + 1
    assert harness.sandbox.state.generations[generation_id].body == expected.to_body()


@fuzz_settings(max_examples=300)
@given(data=st.data())
def test_every_schema_valid_status_call_gets_a_clear_answer(harness: Harness, data: st.DataObject) -> None:
    arguments = data.draw(arguments_from(harness.schemas["get_video_status"]), label="arguments")
    arguments["save_to_disk"] = False  # nothing completes here; never write files for made-up ids

    result = harness.call("get_video_status", arguments)

    message = text_of(result)
    assert not GENERIC_CRASH.match(message), f"get_video_status crashed on {arguments!r}"
    if result.is_error:
        # Refused as invalid, or looked up and not found: either way the agent is told about this id.
        assert "generation_id" in message or "no such generation" in message, message
    else:
        assert result.structured_content is not None
        assert result.structured_content["generation_id"] == arguments["generation_id"]
        assert result.structured_content["done"] is False


@fuzz_settings(max_examples=100)
@given(data=st.data())
def test_every_schema_valid_listing_is_answered(harness: Harness, data: st.DataObject) -> None:
    arguments = data.draw(arguments_from(harness.schemas["list_videos"]), label="arguments")
    before = harness.upstream_requests()

    result = harness.call("list_videos", arguments)

    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    videos = result.structured_content["videos"]
    assert len(videos) <= arguments.get("limit", 20)
    if arguments.get("status") is not None:
        assert {video["status"] for video in videos} <= {arguments["status"]}
    assert harness.upstream_requests() == before


# --- invalid input: one mutation of a valid argument set ---------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    # What a sloppy client sends: numbers and booleans as strings, 0/1 for booleans, JSON's words.
    st.sampled_from(["5", "8", "0", "1", "1.5", "true", "false", "yes", "no", "on", "null", "", " ", "720p", "16:9"]),
    st.sampled_from([0, 1, 5, 8, 0.0, 1.0, 5.0, True, False, -1, 2**31, 2**63]),
)
JSON_VALUES = st.one_of(
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3),
)


def valid_base(harness: Harness, data: st.DataObject, tools: list[str]) -> tuple[str, dict[str, Any]]:
    tool = data.draw(st.sampled_from(sorted(tools)), label="tool")
    base = data.draw(arguments_from(harness.schemas[tool]).filter(lambda args: plausible(tool, args)), label="base")
    return tool, base


def mutate_one_property(
    harness: Harness,
    data: st.DataObject,
    applies: Callable[[dict[str, Any]], bool],
    values: Callable[[dict[str, Any]], st.SearchStrategy[Any]],
) -> tuple[str, dict[str, Any], str]:
    """A valid argument set with one property (for which `applies(subschema)`) set to an invalid value."""
    candidates = [tool for tool in TOOLS if any(applies(sub) for sub in properties(harness.schemas[tool]).values())]
    tool, arguments = valid_base(harness, data, candidates)
    props = properties(harness.schemas[tool])
    name = data.draw(st.sampled_from(sorted(key for key, sub in props.items() if applies(sub))), label="property")
    value = data.draw(values(props[name]), label="value")
    assume(not is_valid(props[name], value))
    arguments[name] = value
    assert not is_valid(harness.schemas[tool], arguments)
    return tool, arguments, name


@fuzz_settings(max_examples=300)
@given(data=st.data())
def test_unknown_arguments_are_refused_naming_them(harness: Harness, data: st.DataObject) -> None:
    tool, arguments = valid_base(harness, data, list(TOOLS))
    declared = set(properties(harness.schemas[tool]))
    near_misses = sorted(
        {variant for name in declared for variant in (name.upper(), name.title(), name.replace("_", "-"), name + " ")}
        | {"Prompt", "aspectRatio", "timeout", "wait", "id", "model", "api_key", "generationId", "__proto__"}
    )
    key = data.draw(st.one_of(st.sampled_from(near_misses), st.text(min_size=1, max_size=30)), label="key")
    assume(key not in declared)
    arguments[key] = data.draw(JSON_VALUES, label="value")

    assert_refused_before_any_request(harness, tool, arguments, (key,))


@fuzz_settings(max_examples=300)
@given(data=st.data())
def test_values_of_the_wrong_type_are_refused_naming_the_argument(harness: Harness, data: st.DataObject) -> None:
    def wrong_type(subschema: dict[str, Any]) -> st.SearchStrategy[Any]:
        types = allowed_types(subschema)
        return JSON_VALUES.filter(lambda value: not has_json_type(value, types))

    tool, arguments, name = mutate_one_property(harness, data, lambda sub: bool(allowed_types(sub)), wrong_type)

    assert_refused_before_any_request(harness, tool, arguments, (f"`{name}`",))


def enum_values(subschema: dict[str, Any]) -> list[Any]:
    """The values a property lists: its enums, and the one-value ranges a number enum is published as."""
    listed = [value for option in options(subschema) for value in option.get("enum", [])]
    points = [option["minimum"] for option in options(subschema) if "minimum" in option]
    if points and all(option.get("maximum") == option.get("minimum") for option in options(subschema)):
        listed += points
    return listed


@fuzz_settings(max_examples=300)
@given(data=st.data())
def test_values_outside_the_enums_are_refused_naming_the_argument_and_what_is_allowed(
    harness: Harness, data: st.DataObject
) -> None:
    def outside(subschema: dict[str, Any]) -> st.SearchStrategy[Any]:
        allowed = enum_values(subschema)
        texts = [str(value) for value in allowed]
        near_misses = [
            variant
            for text in texts
            for variant in (text.upper(), text.title(), f" {text}", f"{text} ", text + "0", text[:-1], text * 2)
        ]
        types = allowed_types(subschema) - {"null"}
        same_type = st.one_of(
            st.sampled_from(near_misses),
            st.sampled_from(["16:10", "21:9", "4k", "1440p", "2160p", "480p", "realistic", "pixar", "paused", "done"]),
            st.text(max_size=12),
            st.integers(min_value=-10, max_value=100),
        )
        return same_type.filter(lambda value: has_json_type(value, types))

    tool, arguments, name = mutate_one_property(harness, data, lambda sub: bool(enum_values(sub)), outside)

    message = assert_refused_before_any_request(harness, tool, arguments, (f"`{name}`",))
    allowed = enum_values(properties(harness.schemas[tool])[name])
    assert all(json.dumps(value) in message for value in allowed), f"the allowed values are not listed: {message}"


def bounds(subschema: dict[str, Any]) -> tuple[float | None, float | None]:
    for option in options(subschema):
        if "minimum" in option or "maximum" in option:
            return option.get("minimum"), option.get("maximum")
    return None, None


@fuzz_settings(max_examples=300)
@given(data=st.data())
def test_numbers_out_of_range_are_refused_naming_the_argument(harness: Harness, data: st.DataObject) -> None:
    def out_of_range(subschema: dict[str, Any]) -> st.SearchStrategy[Any]:
        low, high = bounds(subschema)
        fractional = "integer" not in allowed_types(subschema)
        choices: list[st.SearchStrategy[Any]] = []
        if low is not None:
            choices.append(st.integers(max_value=math.ceil(low) - 1))
            if fractional:
                choices.append(st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False))
        if high is not None:
            choices.append(st.integers(min_value=math.floor(high) + 1))
            if fractional:
                choices.append(st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False))
        return st.one_of(choices)

    tool, arguments, name = mutate_one_property(harness, data, lambda sub: bounds(sub) != (None, None), out_of_range)

    assert_refused_before_any_request(harness, tool, arguments, (f"`{name}`",))


def length_limits(subschema: dict[str, Any]) -> tuple[int, int | None]:
    for option in options(subschema):
        if "maxLength" in option or "minLength" in option:
            return option.get("minLength", 0), option.get("maxLength")
    return 0, None


@fuzz_settings(max_examples=200)
@given(data=st.data())
def test_strings_too_long_or_too_short_are_refused_naming_the_argument_without_echoing_it(
    harness: Harness, data: st.DataObject
) -> None:
    def wrong_length(subschema: dict[str, Any]) -> st.SearchStrategy[Any]:
        shortest, longest = length_limits(subschema)
        choices: list[st.SearchStrategy[Any]] = []
        if longest is not None and longest <= LONGEST_MUTATED:
            choices.append(st.text(min_size=longest + 1, max_size=longest + 300))
            choices.append(st.integers(min_value=longest + 1, max_value=longest + 5000).map(lambda size: "x" * size))
        if shortest > 0:
            choices.append(st.text(max_size=shortest - 1))
        return st.one_of(choices)

    def mutable(subschema: dict[str, Any]) -> bool:
        shortest, longest = length_limits(subschema)
        return shortest > 0 or (longest is not None and longest <= LONGEST_MUTATED)

    tool, arguments, name = mutate_one_property(harness, data, mutable, wrong_length)

    message = assert_refused_before_any_request(harness, tool, arguments, (f"`{name}`",))
    value = arguments[name]
    if len(value) >= 50:
        assert value not in message, "the rejected value is echoed back"


@fuzz_settings(max_examples=60)
@given(data=st.data())
def test_a_missing_required_argument_is_refused_naming_it(harness: Harness, data: st.DataObject) -> None:
    with_required = [tool for tool in TOOLS if harness.schemas[tool].get("required")]
    tool, arguments = valid_base(harness, data, with_required)
    name = data.draw(st.sampled_from(sorted(harness.schemas[tool]["required"])), label="dropped")
    del arguments[name]

    message = assert_refused_before_any_request(harness, tool, arguments, (f"`{name}`",))
    assert "required" in message
