"""Interop with the agent frameworks' own MCP clients: the OpenAI Agents SDK (strict function tools), Pydantic AI
v2 (`MCPToolset`), LangChain's MCP adapters, FastMCP's `Client`, and google-genai (a `ClientSession` passed to
Gemini as a tool).

Each framework runs a small script of its own (`tests/interop/python/<name>_client.py`) inside its own venv, pinned
in `tests/interop/python/<name>.txt` and installed from PyPI on first use (`tests/framework_envs.py`). The script
starts the real server over stdio against this module's sandbox, lists the tools, makes a video through the
framework's tool-calling path (its agent loop, with a stand-in model where there is one: nothing leaves the
machine) and calls `create_video` with resolution "4k", and reports what the model would read. One run per
framework; the tests below read its report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env
from tests.framework_envs import FRAMEWORKS, framework_pythons
from tests.interop_support import run_bounded

NAMES = ["openai-agents", "pydantic-ai", "langchain", "fastmcp", "google-genai"]
# Each script starts the server (LangChain's adapters once per call), makes one video and refuses one call.
RUN_TIMEOUT_SECONDS = 180.0
PUBLIC_TOOLS = {
    "create_video",
    "get_video_status",
    "generate_video_blocking",
    "lip_sync_video",
    "list_videos",
    "preview_video",
    "account_status",
}
ALLOWED_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
DURATION_CHOICES = [{"minimum": 5, "maximum": 5}, {"minimum": 8, "maximum": 8}, {"minimum": 10, "maximum": 10}]


@dataclass(frozen=True)
class Run:
    """One framework's run: what its script reported, and how many creates reached the sandbox meanwhile."""

    name: str
    report: dict[str, Any]
    creates: int

    @property
    def video(self) -> str:
        """What the model read back from the video call."""
        text: str = self.report["video"]
        return text

    @property
    def refusal(self) -> str:
        """What the model read back from the refused call."""
        text: str = self.report["refusal"]
        return text


@pytest.fixture(scope="module")
def pythons() -> dict[str, Path]:
    return framework_pythons(NAMES)


class Runs:
    """Each framework's run, made once on first request (the common tests and the framework's own share it)."""

    def __init__(self, pythons: dict[str, Path], sandbox: RunningSandbox, tmp: pytest.TempPathFactory) -> None:
        self.pythons, self.sandbox, self.tmp = pythons, sandbox, tmp
        self.done: dict[str, Run] = {}

    def get(self, name: str) -> Run:
        if name not in self.done:
            self.done[name] = self._run(name)
        return self.done[name]

    def _run(self, name: str) -> Run:
        script = FRAMEWORKS / f"{name.replace('-', '_')}_client.py"
        env = server_env(self.sandbox, self.tmp.mktemp(name), PIXVERSE_MCP_LOG_LEVEL="WARNING")
        before = self.sandbox.state.stats()["creates"]
        command = [str(self.pythons[name]), str(script), sys.executable, "-m", "pixverse_mcp"]
        finished = run_bounded(command, env=env, timeout=RUN_TIMEOUT_SECONDS)
        assert finished.returncode == 0, f"{name} failed:\n{finished.stderr[-4000:]}"
        report = json.loads(finished.stdout.strip().splitlines()[-1])
        return Run(name, report, self.sandbox.state.stats()["creates"] - before)


@pytest.fixture(scope="module")
def runs(pythons: dict[str, Path], shared_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(pythons, shared_sandbox, tmp_path_factory)


@pytest.fixture(params=NAMES)
def run(request: pytest.FixtureRequest, runs: Runs) -> Run:
    return runs.get(request.param)


def test_lists_the_tools(run: Run) -> None:
    assert set(run.report["tools"]) == PUBLIC_TOOLS


def test_makes_a_video_through_its_own_tool_calling(run: Run, shared_sandbox: RunningSandbox) -> None:
    assert run.creates == 1, "one video, and nothing for the refused call"
    assert f"{shared_sandbox.url}/_sandbox/videos/" in run.video
    assert "completed" in run.video or "Video ready" in run.video


def test_our_words_for_a_refused_argument_reach_the_model(run: Run) -> None:
    assert "Invalid arguments for create_video" in run.refusal
    assert "resolution" in run.refusal
    for value in ALLOWED_RESOLUTIONS:
        assert value in run.refusal


# --- what each framework makes of the schemas and results ------------------------------------------------------


def test_openai_agents_converts_every_tool_to_a_strict_schema_with_exact_durations(runs: Runs) -> None:
    run = runs.get("openai-agents")
    assert run.report["strict"] == dict.fromkeys(PUBLIC_TOOLS, True)
    duration = run.report["strict_schemas"]["create_video"]["properties"]["duration"]
    assert [{key: choice[key] for key in ("minimum", "maximum")} for choice in duration["anyOf"]] == DURATION_CHOICES


def test_pydantic_ai_offers_every_tool_with_its_published_schema(runs: Runs) -> None:
    run = runs.get("pydantic-ai")
    definitions = {tool["name"]: tool["parameters"] for tool in run.report["definitions"]}
    assert set(definitions) == PUBLIC_TOOLS
    assert definitions["create_video"]["properties"]["resolution"]["enum"] == list(ALLOWED_RESOLUTIONS)


def test_langchain_binds_every_tool_for_openai_and_keeps_the_structured_result(runs: Runs) -> None:
    run = runs.get("langchain")
    assert set(run.report["bound"]) == PUBLIC_TOOLS
    assert run.report["video_structured"]["status"] == "completed"
    assert run.report["refusal_status"] == "error"


def test_fastmcp_parses_the_result_against_the_output_schema(runs: Runs) -> None:
    run = runs.get("fastmcp")
    assert run.report["video_data_type"] not in ("dict", "NoneType"), "the result was not parsed into its schema"
    assert json.loads(run.video)["status"] == "completed"


def any_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema's `anyOf` as google-genai sends it (`any_of`: proto3 JSON takes a field's proto name too)."""
    options: list[dict[str, Any]] = schema.get("anyOf", schema.get("any_of", []))
    return options


def gemini_problems(schema: dict[str, Any], path: str = "$") -> Iterator[str]:
    """What Gemini's function-declaration `Schema` refuses: an enum on anything but a string, or of non-strings."""
    if "enum" in schema and (schema.get("type") != "STRING" or not all(isinstance(v, str) for v in schema["enum"])):
        yield f"{path}: enum {schema['enum']} on type {schema.get('type')}"
    for name, sub in schema.get("properties", {}).items():
        yield from gemini_problems(sub, f"{path}.{name}")
    for index, sub in enumerate(any_of(schema)):
        yield from gemini_problems(sub, f"{path}.anyOf[{index}]")
    if isinstance(schema.get("items"), dict):
        yield from gemini_problems(schema["items"], f"{path}.items")


def test_google_genai_translates_every_tool_into_declarations_gemini_accepts(runs: Runs) -> None:
    run = runs.get("google-genai")
    failed = {name: found["error"] for name, found in run.report["translations"].items() if "error" in found}
    assert failed == {}
    (declarations,) = run.report["declarations"]
    sent = {declaration["name"]: declaration["parameters"] for declaration in declarations}
    assert set(sent) == PUBLIC_TOOLS
    assert [problem for schema in sent.values() for problem in gemini_problems(schema)] == []
    duration = sent["generate_video_blocking"]["properties"]["duration"]
    assert duration["type"] == "INTEGER"
    assert [{key: choice[key] for key in ("minimum", "maximum")} for choice in any_of(duration)] == DURATION_CHOICES
    assert sent["create_video"]["properties"]["resolution"]["enum"] == list(ALLOWED_RESOLUTIONS)
