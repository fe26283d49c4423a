"""Interop with clients that check every structured tool result against the tool's `outputSchema`.

The MCP Inspector CLI (2.12) validates `structuredContent` on every result, errors included, and replaces a result
that does not fit with its own schema error: an agent behind such a client would read "data must have required
property 'status'" (or `-32602 Structured content does not match the tool's output schema`) instead of our message.
So every result of a tool with an outputSchema must carry a structuredContent that fits it, or, for refused
arguments, none at all. These tests drive the real server (`python -m pixverse_mcp` against the sandbox) with the
Inspector over stdio and Streamable HTTP, in the `legacy` (initialize) and `auto` (server/discover) protocol eras,
and with the TypeScript SDK v2 client (`tests/interop/v2_client.mjs`) in both eras, through one success and four
failures: a refused argument, an unknown generation_id, and an upstream 401 and 403 during a wait.

The v2 client (2.3.1) itself validates only results that are not errors; the script also applies the SDK's own
validator to error results, as the Inspector does, and reports that as `schemaErrors`.

The Node packages are pinned in tests/interop/package-lock.json and installed on first use (`npm ci`). The Inspector
declares Node >= 22.19 but runs on the machine's Node 20 (npm only warns), so no other Node is needed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env
from tests.http_server import STATEFUL, served
from tests.interop_support import interop_folder, node, run_bounded

# The Inspector's own request timeout is a fixed 60 s; no call here comes near it.
INSPECTOR_TIMEOUT_SECONDS = 90.0
V2_CLIENT_TIMEOUT_SECONDS = 180.0
ERAS = ("legacy", "auto")
TRANSPORTS = ("stdio", "streamable-http")
# The server's log reaches the client's stderr (and so a failure's message): INFO keeps it readable.
SERVER_LOG_LEVEL = "INFO"
# The Inspector's exit codes.
EXIT_OK, EXIT_TOOL_ERROR = 0, 5
ALLOWED_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
# What a client says instead of the tool's message when structuredContent does not fit the outputSchema (the SDKs'
# -32602 message, and the AJV messages the Inspector prints).
SCHEMA_ERROR_MARKERS = (
    "does not match",
    "-32602",
    "failed to validate",
    "must have required property",
    "must be equal to",
    "must not have additional properties",
)
# An upstream refusal queued for the status requests of a wait, and what our message must then name.
UPSTREAM_REFUSALS = {"unauthorized": "aimlapi_api_key", "no_credits": "credit"}


def assert_no_schema_error(output: str) -> None:
    """No client-side output-schema complaint anywhere in what the client printed."""
    found = [line for line in output.splitlines() if any(marker in line.lower() for marker in SCHEMA_ERROR_MARKERS)]
    assert not found, "the client reported an output-schema mismatch instead of our message:\n" + "\n".join(found)


def assert_refusal_text(text: str) -> None:
    """Our refusal names the argument and every allowed value."""
    assert "resolution" in text, text
    for value in ALLOWED_RESOLUTIONS:
        assert value in text, text


def assert_unknown_text(text: str) -> None:
    """Our message names the id and says the API does not know it."""
    assert "nope" in text, text
    assert "no such generation" in text.lower() or "not found" in text.lower(), text


def assert_upstream_refusal_text(fault: str, text: str, generation_id: str) -> None:
    """Our message says what to fix (the key, the credits) and keeps the generation_id, to check on later."""
    assert UPSTREAM_REFUSALS[fault] in text.lower(), text
    assert generation_id in text, text


# --- The MCP Inspector CLI -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """How the Inspector reaches the server: its options (`-e KEY=VALUE` for stdio) and the command or URL."""

    options: tuple[str, ...]
    server: tuple[str, ...]


@dataclass(frozen=True)
class InspectorRun:
    """One `mcp-inspector --cli --format json` run: its exit code, its output, and the result it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def result(self) -> dict[str, Any]:
        """The tools/call result printed on stdout (one JSON object); fails with the whole output if none."""
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                printed: dict[str, Any] = json.loads(line)
                if "result" in printed:
                    return printed["result"]  # type: ignore[no-any-return]
        raise AssertionError(f"the Inspector printed no result (exit {self.returncode}):\n{self.output}")

    @property
    def text(self) -> str:
        """The result's text content: what an agent reads."""
        return "\n".join(item["text"] for item in self.result.get("content", []) if item.get("type") == "text")


@pytest.fixture(scope="module")
def interop() -> Path:
    return interop_folder()


@pytest.fixture(params=TRANSPORTS)
def target(request: pytest.FixtureRequest, sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Target]:
    """The real server against the sandbox: a stdio command for the Inspector to spawn, or an HTTP server's URL."""
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_LOG_LEVEL=SERVER_LOG_LEVEL)
    if request.param == "stdio":
        # The Inspector's stdio child does not inherit the Inspector's environment: pass every variable.
        options = tuple(arg for key, value in env.items() for arg in ("-e", f"{key}={value}"))
        yield Target(options, (sys.executable, "-m", "pixverse_mcp"))
    else:
        with served(env, tmp_path / "logs", STATEFUL) as server:
            yield Target((), (server.url,))


def inspect(interop: Path, target: Target, era: str, tool: str, arguments: dict[str, Any], home: Path) -> InspectorRun:
    """`mcp-inspector --cli --format json --method tools/call` once, bounded; `home` keeps its files out of ~."""
    home.mkdir(exist_ok=True)
    command = [
        node(),
        str(interop / "node_modules" / ".bin" / "mcp-inspector"),
        "--cli",
        "--format",
        "json",
        "--protocol-era",
        era,
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        "--tool-args-json",
        json.dumps(arguments),
        *target.options,
        "--",
        *target.server,
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "MCP_INSPECTOR_SECRET_STORE": "memory"}
    finished = run_bounded(command, env=env, timeout=INSPECTOR_TIMEOUT_SECONDS)
    return InspectorRun(finished.returncode, finished.stdout, finished.stderr)


@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_gets_a_completed_video(interop: Path, target: Target, era: str, tmp_path: Path) -> None:
    run = inspect(interop, target, era, "generate_video_blocking", {"prompt": "a kite over a beach"}, tmp_path / "h")

    assert_no_schema_error(run.output)
    assert run.returncode == EXIT_OK, run.output
    assert run.result.get("isError", False) is False
    assert run.result["structuredContent"]["status"] == "completed"


@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_shows_our_refusal_of_a_bad_argument(
    interop: Path, target: Target, era: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    arguments = {"prompt": "a kite over a beach", "resolution": "4k"}
    run = inspect(interop, target, era, "create_video", arguments, tmp_path / "h")

    assert_no_schema_error(run.output)
    assert run.returncode == EXIT_TOOL_ERROR, run.output
    assert run.result["isError"] is True
    assert "structuredContent" not in run.result, "a refused call has no generation to describe"
    assert_refusal_text(run.text)
    assert sandbox.state.stats()["creates"] == 0


@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_shows_our_message_for_an_unknown_id(
    interop: Path, target: Target, era: str, tmp_path: Path
) -> None:
    run = inspect(interop, target, era, "get_video_status", {"generation_id": "nope"}, tmp_path / "h")

    assert_no_schema_error(run.output)
    assert run.returncode == EXIT_TOOL_ERROR, run.output
    assert run.result["isError"] is True
    assert_unknown_text(run.text)


@pytest.mark.parametrize("fault", sorted(UPSTREAM_REFUSALS))
@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_shows_our_message_for_an_upstream_refusal_during_a_wait(
    interop: Path, target: Target, era: str, fault: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    created = inspect(interop, target, era, "create_video", {"prompt": f"a kite ({fault})"}, tmp_path / "h")
    assert created.returncode == EXIT_OK, created.output
    generation_id = created.result["structuredContent"]["generation_id"]

    sandbox.state.inject(fault, method="GET", count=50)
    try:
        arguments = {"generation_id": generation_id, "wait_seconds": 2}
        run = inspect(interop, target, era, "get_video_status", arguments, tmp_path / "h")
        used = sandbox.state.faults()["used"]
    finally:
        sandbox.state.clear_faults()

    assert used >= 1, "the server never asked the sandbox during the wait"
    assert_no_schema_error(run.output)
    assert run.returncode == EXIT_TOOL_ERROR, run.output
    assert run.result["isError"] is True
    assert_upstream_refusal_text(fault, run.text, generation_id)
    if "structuredContent" in run.result:
        assert run.result["structuredContent"]["generation_id"] == generation_id


# --- The TypeScript SDK v2 client ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v2_report(interop: Path, shared_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One run of v2_client.mjs (both eras, every case) against the real server over stdio; its JSON report."""
    env = server_env(shared_sandbox, tmp_path_factory.mktemp("v2-client"), PIXVERSE_MCP_LOG_LEVEL=SERVER_LOG_LEVEL)
    finished = run_bounded(
        [node(), str(interop / "v2_client.mjs"), sys.executable], env=env, timeout=V2_CLIENT_TIMEOUT_SECONDS
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def v2_call(report: Any, era: str, case: str) -> dict[str, Any]:
    """One call's entry for `era`, failing on anything the client threw or any schema error it or we found."""
    connection = report[era]
    assert "failed" not in connection, connection["failed"]
    call: dict[str, Any] = connection[case]
    assert "thrown" not in call, f"the v2 client threw: {call['thrown']}"
    assert call["schemaErrors"] is None, f"structuredContent does not fit the outputSchema: {call['schemaErrors']}"
    return call


@pytest.mark.parametrize(("era", "revision"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
def test_the_v2_client_connects_in_both_eras(v2_report: Any, era: str, revision: str) -> None:
    connection = v2_report[era]

    assert "failed" not in connection, connection["failed"]
    assert connection["protocolVersion"] == revision
    assert connection["server"]["name"] == "pixverse-mcp"
    assert {"create_video", "get_video_status", "generate_video_blocking"} <= set(connection["tools"])


@pytest.mark.parametrize("era", ERAS)
def test_the_v2_client_gets_a_completed_video(v2_report: Any, era: str) -> None:
    call = v2_call(v2_report, era, "success")

    assert call["isError"] is False
    assert call["structuredContent"]["status"] == "completed"


@pytest.mark.parametrize("era", ERAS)
def test_the_v2_client_shows_our_refusal_of_a_bad_argument(v2_report: Any, era: str) -> None:
    call = v2_call(v2_report, era, "refused")

    assert call["isError"] is True
    assert call["hasStructuredContent"] is False
    assert_refusal_text(call["text"])
    assert call["createsReached"] == 0


@pytest.mark.parametrize("era", ERAS)
def test_the_v2_client_shows_our_message_for_an_unknown_id(v2_report: Any, era: str) -> None:
    call = v2_call(v2_report, era, "unknown")

    assert call["isError"] is True
    assert_unknown_text(call["text"])


@pytest.mark.parametrize(("fault", "case"), [("unauthorized", "unauthorized"), ("no_credits", "noCredits")])
@pytest.mark.parametrize("era", ERAS)
def test_the_v2_client_shows_our_message_for_an_upstream_refusal_during_a_wait(
    v2_report: Any, era: str, fault: str, case: str
) -> None:
    call = v2_call(v2_report, era, case)

    assert call["generationId"], f"create_video failed: {call['created']}"
    assert call["faultsUsed"] >= 1, "the server never asked the sandbox during the wait"
    assert call["isError"] is True
    assert_upstream_refusal_text(fault, call["text"], call["generationId"])
    if call["hasStructuredContent"]:
        assert call["structuredContent"]["generation_id"] == call["generationId"]
