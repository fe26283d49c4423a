"""What every framework script shares: the calls it makes, how it starts the server, how it reports.

Each script runs inside its framework's own venv (`tests/framework_envs.py`), so this file imports nothing but the
standard library. The server is the command given on the script's command line (`python -m pixverse_mcp ...`),
started over stdio with this process's environment, which the test points at its sandbox. The script prints one
JSON report as its last line of stdout; the test reads it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# A video the sandbox makes in about a second; duration given, so the integer enum travels the whole path.
VIDEO_TOOL = "generate_video_blocking"
VIDEO_ARGUMENTS: dict[str, Any] = {
    "prompt": "a paper boat drifting down a rainy street",
    "resolution": "360p",
    "duration": 5,
}
# Refused before anything is sent; the refusal's words must reach the model.
REFUSED_TOOL = "create_video"
REFUSED_ARGUMENTS: dict[str, Any] = {"prompt": "a kite over a beach", "resolution": "4k"}


def server_command() -> tuple[str, list[str]]:
    """The server's command and arguments, from this script's command line."""
    command, *arguments = sys.argv[1:]
    return command, arguments


def server_env() -> dict[str, str]:
    """The environment the server starts with: this process's own (the test's sandbox, state dir, log level)."""
    return dict(os.environ)


def report(**fields: Any) -> None:
    """Print the report the test reads (the last line of stdout)."""
    print(json.dumps(fields, default=str))
