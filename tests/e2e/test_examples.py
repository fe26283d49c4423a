"""The shipped examples work as the README says: the Claude Desktop config names this package's command, the stdio
client generates a video against the built-in sandbox, and the HTTP client does so over Streamable HTTP with a token.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tests.http_server import STATEFUL, served

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# The examples run against the built-in sandbox (about 12 s a video); generous, not a performance bound.
EXAMPLE_DEADLINE_SECONDS = 120


def example_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for an example: no key, no token, the journal under tmp_path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIMLAPI_", "PIXVERSE_MCP_")) and key not in ("PYTHONPATH",)
    }
    env["PIXVERSE_MCP_STATE_DIR"] = str(tmp_path / "state")
    env.update(extra)
    return env


def run_example(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_DEADLINE_SECONDS,
        check=False,
    )


def assert_printed_a_sandbox_video_url(completed: subprocess.CompletedProcess[str]) -> None:
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, completed.stdout
    [url] = lines
    assert url.startswith("http://127.0.0.1:")
    assert "/_sandbox/videos/" in url


def test_claude_desktop_config_names_this_package(tmp_path: Path) -> None:
    config = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())

    server = config["mcpServers"]["pixverse"]
    assert set(server) >= {"command", "args", "env"}
    assert server["command"] == "uvx"
    assert server["args"] == ["pixverse-mcp"]
    assert "AIMLAPI_API_KEY" in server["env"]
    assert all(isinstance(value, str) for value in server["env"].values())
    # No real key is shipped: a placeholder only.
    assert server["env"]["AIMLAPI_API_KEY"].startswith("<")

    # `uvx pixverse-mcp` runs the console script of the package named pixverse-mcp: this one.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^\[project\]\n(?:.*\n)*?name = "pixverse-mcp"$', pyproject, re.MULTILINE)
    scripts = re.search(r"^\[project\.scripts\]\n((?:[^\[\n].*\n)*)", pyproject, re.MULTILINE)
    assert scripts is not None
    assert 'pixverse-mcp = "pixverse_mcp.cli:main"' in scripts.group(1).splitlines()
    [installed] = entry_points(group="console_scripts", name="pixverse-mcp")
    assert installed.value == "pixverse_mcp.cli:main"
    # And the README shows the same configuration.
    readme = (ROOT / "README.md").read_text()
    assert '"args": ["pixverse-mcp"]' in readme
    assert '"command": "uvx"' in readme


def test_installed_entry_point_is_the_cli(tmp_path: Path) -> None:
    """The console script the config resolves to is installed and is this package's CLI."""
    script = shutil.which("pixverse-mcp", path=str(Path(sys.executable).parent))
    assert script is not None
    completed = subprocess.run(
        [script, "--help"], env=example_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "--transport" in completed.stdout
    assert "streamable-http" in completed.stdout


def test_client_stdio_example_generates_on_the_sandbox(tmp_path: Path) -> None:
    completed = run_example("client_stdio.py", example_env(tmp_path), "a paper boat in the rain")

    assert_printed_a_sandbox_video_url(completed)
    assert "tools:" in completed.stderr
    assert "generate_video_blocking" in completed.stderr


def test_client_http_example_generates_over_streamable_http_with_the_token(tmp_path: Path) -> None:
    token = "example-token"
    server_env = example_env(tmp_path, PIXVERSE_MCP_AUTH_TOKEN=token)
    with served(server_env, tmp_path, STATEFUL, "--sandbox") as server:
        without_token = run_example("client_http.py", example_env(tmp_path), server.url, "no token")
        completed = run_example(
            "client_http.py", example_env(tmp_path, PIXVERSE_MCP_AUTH_TOKEN=token), server.url, "a lighthouse"
        )

    assert_printed_a_sandbox_video_url(completed)
    assert without_token.returncode != 0
    assert not without_token.stdout.strip()
