"""The shipped examples work as the README says: every host config runs this package's command (never PixVerse's
own `pixverse-mcp`), `uvx` runs it from a checkout, the stdio client generates a video against the built-in sandbox,
and the HTTP client does so over Streamable HTTP with a token.
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

import pixverse_mcp
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


DISTRIBUTION = "aimlapi-pixverse-mcp"


def test_the_distribution_and_its_command_are_ours_not_pixverses(tmp_path: Path) -> None:
    """`uvx aimlapi-pixverse-mcp` runs this package's CLI (the PyPI name pixverse-mcp is another server's)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'^\[project\]\n(?:.*\n)*?name = "{DISTRIBUTION}"$', pyproject, re.MULTILINE)
    [installed] = entry_points(group="console_scripts", name=DISTRIBUTION)
    assert installed.value == "pixverse_mcp.cli:main"
    server = json.loads((ROOT / "server.json").read_text())
    assert [package["identifier"] for package in server["packages"]] == [DISTRIBUTION]


def _uvx_server(config: dict[str, object]) -> dict[str, object]:
    """The pixverse entry of a host's MCP config (`mcpServers` or VS Code's `servers`)."""
    servers = config.get("mcpServers") or config.get("servers")
    assert isinstance(servers, dict)
    server = servers["pixverse"]
    assert isinstance(server, dict)
    return server


def test_every_host_config_runs_this_package_with_a_placeholder_key() -> None:
    for name in ("claude_desktop_config.json", "cursor_mcp.json", "vscode_mcp.json"):
        server = _uvx_server(json.loads((EXAMPLES / name).read_text()))
        assert server["command"] == "uvx", name
        assert server["args"] == [DISTRIBUTION], name
        env = server["env"]
        assert isinstance(env, dict)
        # No real key is shipped: a placeholder, or VS Code's prompt for one.
        assert str(env["AIMLAPI_API_KEY"]).startswith(("<", "${input:")), name
    claude_code = (EXAMPLES / "claude_code.sh").read_text()
    assert f"-- uvx {DISTRIBUTION}" in claude_code
    assert "claude mcp add pixverse" in claude_code


def test_nothing_tells_a_user_to_run_someone_elses_pixverse_mcp() -> None:
    """The bare `uvx pixverse-mcp` (or `"args": ["pixverse-mcp"]` for uvx) would install PixVerse's own server."""
    shipped = [ROOT / "README.md", ROOT / "server.json", *EXAMPLES.iterdir()]
    for path in shipped:
        text = path.read_text()
        assert "uvx pixverse-mcp" not in text, path
        assert '"args": ["pixverse-mcp"]' not in text, path


def test_the_readme_shows_every_host_config_as_shipped() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("claude_desktop_config.json", "cursor_mcp.json", "vscode_mcp.json"):
        shipped = json.loads((EXAMPLES / name).read_text())
        blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", readme, re.DOTALL)]
        assert shipped in blocks, f"the README does not show examples/{name} as it is"
    assert (EXAMPLES / "claude_code.sh").read_text().splitlines()[-1] in readme


def test_uvx_runs_the_server_from_a_checkout(tmp_path: Path) -> None:
    """The README's `uvx --from /path/to/checkout aimlapi-pixverse-mcp`, for an unpublished copy."""
    uvx = shutil.which("uvx", path=str(Path(sys.executable).parent)) or shutil.which("uvx")
    assert uvx is not None, "uv is part of the test extra"
    env = example_env(tmp_path, UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_TOOL_DIR=str(tmp_path / "uv-tools"))
    completed = subprocess.run(
        [uvx, "--from", str(ROOT), DISTRIBUTION, "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().endswith(pixverse_mcp.__version__)


def test_installed_entry_point_is_the_cli(tmp_path: Path) -> None:
    """The console script the config resolves to is installed and is this package's CLI."""
    script = shutil.which(DISTRIBUTION, path=str(Path(sys.executable).parent))
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
