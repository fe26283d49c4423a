"""The pinned Node.js clients of tests/interop (TypeScript SDK v1 and v2, MCP Inspector CLI), installed on first use.

`interop_folder()` runs `npm ci` in tests/interop when what `node_modules` holds differs from
`package-lock.json`, so adding or bumping a pinned package reinstalls instead of running against a stale tree, and
the README's test command stays the only one to run (the npm registry is the only thing needed from outside).
`run_bounded(...)` runs one client with a deadline and kills its whole process group afterwards, so a client's own
children (the stdio server it spawned) never outlive a test.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INTEROP = Path(__file__).parent / "interop"
NPM_CI_TIMEOUT_SECONDS = 600
# `npm ci` flags. The Inspector declares Node >= 22.19 but runs on Node 20 (checked: its CLI works there), so an
# `engine-strict=true` in someone's npmrc must not refuse it. The only install script in the lock is the Inspector's
# `postinstall`, a no-op for an installed dependency: skipping scripts keeps the install hermetic and quiet.
NPM_CI_ARGS = ("ci", "--no-audit", "--no-fund", "--engine-strict=false", "--ignore-scripts")


def _locked_versions(lock_path: Path) -> dict[str, str]:
    """Every `node_modules/...` path of a lock file with its version (optional packages left out: which of them
    npm installs depends on the platform)."""
    packages: dict[str, Any] = json.loads(lock_path.read_text())["packages"]
    return {
        path: entry.get("version", "")
        for path, entry in packages.items()
        if path.startswith("node_modules/") and not entry.get("optional", False)
    }


def is_installed(folder: Path = INTEROP) -> bool:
    """Whether `node_modules` holds exactly what `package-lock.json` pins (every non-optional package, same version).

    npm records what it installed in `node_modules/.package-lock.json`; a package missing there or at another
    version (a new pin, a bumped one, a half-finished install) means `npm ci` must run again.
    """
    installed_lock = folder / "node_modules" / ".package-lock.json"
    if not installed_lock.is_file():
        return False
    try:
        installed = _locked_versions(installed_lock)
    except (ValueError, KeyError):
        return False
    wanted = _locked_versions(folder / "package-lock.json")
    if any(installed.get(path) != version for path, version in wanted.items()):
        return False
    return all((folder / path / "package.json").is_file() for path in wanted)


def interop_folder(folder: Path = INTEROP) -> Path:
    """tests/interop with its pinned packages installed (`npm ci` there first if needed); fails if Node is missing.

    A file lock serializes installs, so two test processes starting together do not run `npm ci` at once.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node is not None, "Node.js is needed for the interop tests"
    assert npm is not None, "npm is needed for the interop tests"
    if is_installed(folder):
        return folder
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"pixverse-mcp-interop-{key}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_installed(folder):
            subprocess.run([npm, *NPM_CI_ARGS], cwd=folder, check=True, timeout=NPM_CI_TIMEOUT_SECONDS)
        assert is_installed(folder), f"npm ci in {folder} did not install what package-lock.json pins"
    return folder


def node() -> str:
    """The `node` on PATH (the machine's Node 20 is enough for every pinned client)."""
    found = shutil.which("node")
    assert found is not None, "Node.js is needed for the interop tests"
    return found


def run_bounded(
    command: Sequence[str], *, env: dict[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `command` to completion within `timeout` s, capturing text output; then kill its process group.

    The command gets a session of its own, so whatever it started (a stdio server, a helper process) goes with it,
    whether it finished, timed out (TimeoutExpired is raised after the kill) or the test was interrupted.
    """
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise
    _kill_group(process)  # whatever it left behind
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL every process left in the command's session (its group), the command itself included."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
