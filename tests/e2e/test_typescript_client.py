"""Interop: the official TypeScript SDK client (what Claude Desktop-style hosts are built on) drives the real server
over stdio against the sandbox. Its dependencies are pinned in tests/interop/package-lock.json and installed on first
use from the npm registry (`npm ci`), so the README's test command stays the only one to run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env

INTEROP = Path(__file__).parents[1] / "interop"


@pytest.fixture(scope="module")
def node_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node is not None, "Node.js is needed for the TypeScript interop test"
    assert npm is not None, "npm is needed for the TypeScript interop test"
    if not (INTEROP / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True, timeout=300)
    return INTEROP / "ts_client.mjs"


def _run(node_client: Path, env: dict[str, str]) -> dict[str, Any]:
    finished = subprocess.run(
        ["node", str(node_client), sys.executable], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_typescript_client_generates_a_video_with_progress(
    node_client: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    report = _run(node_client, server_env(sandbox, tmp_path))

    assert report["server"]["name"] == "pixverse-mcp"
    result = report["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["status"] == "completed"
    assert result["structuredContent"]["video_url"].startswith(sandbox.url)
    assert any(item["type"] == "resource_link" for item in result["content"])
    assert report["progress"], "the TypeScript client heard no progress"
    values = [update["progress"] for update in report["progress"]]
    assert values == sorted(values)
    assert sandbox.state.stats()["creates"] == 1


def test_the_typescript_client_sees_inline_enums_and_clear_refusals(
    node_client: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    report = _run(node_client, server_env(sandbox, tmp_path))

    tools = {tool["name"]: tool for tool in report["tools"]}
    resolution = tools["create_video"]["inputSchema"]["properties"]["resolution"]
    assert resolution["enum"] == ["360p", "540p", "720p", "1080p"]
    generation_id = tools["generate_video_blocking"]["outputSchema"]["properties"]["generation_id"]
    assert {"type": "string"} in generation_id["anyOf"]  # null when nothing was created
    assert report["invalid"]["isError"] is True
    assert "resolution" in report["invalid"]["text"]
    assert "720p" in report["invalid"]["text"]
