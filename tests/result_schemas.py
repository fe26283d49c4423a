"""Every structured tool result produced anywhere in the suite is checked against the schema it was published with.

Strict clients (the MCP Inspector, the TypeScript SDK) replace a result whose `structuredContent` does not match
the tool's `outputSchema` with a protocol error, so an agent never sees our words. The session fixture in
conftest.py wraps the SDK `Client.call_tool` (checking against the schema that very server published) and the raw
JSON-RPC helper checks against the snapshot of the published schemas: no path, now or later, can regress unseen.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_schemas.json"
# The schemas each connected client's server published, by the client's id (Client is not hashable); an entry
# goes when its client does.
_published: dict[int, dict[str, dict[str, Any] | None]] = {}


def check(name: str, structured: Any, is_error: bool, schema: dict[str, Any] | None) -> None:
    """Fail unless a result of tool `name` is what its `outputSchema` allows (errors included)."""
    if schema is None:
        return
    if structured is None:
        assert is_error, f"{name}: a successful result without structuredContent although it declares a schema"
        return
    error = jsonschema.exceptions.best_match(validator(json.dumps(schema, sort_keys=True)).iter_errors(structured))
    if error is not None:
        raise AssertionError(f"{name}: structuredContent does not match its outputSchema: {error.message}")


@cache
def validator(schema_json: str) -> Any:
    """A validator for one schema (given as JSON), the schema itself checked once: `jsonschema.validate` checks it
    again on every call, which costs more than the validation."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@cache
def snapshot_schemas() -> dict[str, dict[str, Any] | None]:
    """The published output schemas, from the snapshot the schema test keeps equal to what the server publishes."""
    return {tool["name"]: tool.get("outputSchema") for tool in json.loads(SNAPSHOT.read_text())}


def check_raw(name: str, result: dict[str, Any]) -> None:
    """`check` for a raw JSON-RPC `tools/call` result (a protocol task's handle is not a tool result: its final
    result is checked when `tasks/get` returns it)."""
    if result.get("resultType") == "task":
        return
    check(name, result.get("structuredContent"), bool(result.get("isError")), snapshot_schemas().get(name))


def checking_call_tool(original: Any) -> Any:
    """`Client.call_tool`, plus the check against what this client's server published."""

    async def call_tool(self: Client, name: str, *args: Any, **kwargs: Any) -> CallToolResult:
        key = id(self)
        if key not in _published:
            # Asked before the first call, while the server is surely there: after it, a test may have stopped
            # the server, and a request to a server that is gone can end the whole client session.
            try:
                listed = await self.list_tools()
            except MCPError:  # refused (a test of bad credentials): check against the snapshot instead
                pass
            else:
                _published[key] = {tool.name: tool.output_schema for tool in listed.tools}
                weakref.finalize(self, _published.pop, key, None)
        result: CallToolResult = await original(self, name, *args, **kwargs)
        schemas = _published.get(key) or snapshot_schemas()
        check(name, result.structured_content, bool(result.is_error), schemas.get(name))
        return result

    return call_tool


def remember_valid_schemas() -> Callable[[], None]:
    """Make each jsonschema validator class remember the schemas its `check_schema` passed (a failure is not
    remembered, so it raises every time); return what undoes it."""
    passed: set[tuple[type[Any], str]] = set()
    originals: dict[type[Any], Any] = {}
    drafts = {getattr(jsonschema, name) for name in dir(jsonschema) if re.fullmatch(r"Draft\d+Validator", name)}
    for cls in drafts:
        originals[cls] = cls.__dict__["check_schema"]

        def check_schema(cls: type[Any], schema: Any, *args: Any, _check: Any = originals[cls], **kwargs: Any) -> None:
            key = (cls, json.dumps(schema, sort_keys=True, default=repr))
            if key not in passed:
                _check.__func__(cls, schema, *args, **kwargs)
                passed.add(key)

        cls.check_schema = classmethod(check_schema)

    def restore() -> None:
        for cls, original in originals.items():
            cls.check_schema = original

    return restore
