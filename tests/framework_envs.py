"""The agent frameworks' own venvs, made on first use: one per framework, because their pins conflict with each other
and with ours (LangChain's adapters still need the MCP SDK 1.x, the others 2.x).

Each venv lives in `.venv-interop/<name>` (git-ignored) and is installed from `tests/interop/python/<name>.txt`,
every package pinned to an exact version, from PyPI. It is reused while its pins and our interpreter are the ones
it was made from (a fingerprint file in the venv says so), and made again from scratch otherwise. Missing venvs are
installed in parallel (the downloads dominate), under a file lock so two test processes never install at once. A
framework that cannot be installed fails the tests that need it, with pip's own words: nothing is skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

FRAMEWORKS = Path(__file__).parent / "interop" / "python"
VENVS = Path(__file__).parents[1] / ".venv-interop"
INSTALL_TIMEOUT_SECONDS = 900
FINGERPRINT = "pins.sha256"


def requirements(name: str) -> Path:
    return FRAMEWORKS / f"{name}.txt"


def python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def _fingerprint(name: str) -> str:
    """What the venv was made from: its pinned requirements and the interpreter that made it."""
    digest = hashlib.sha256(requirements(name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def is_ready(name: str) -> bool:
    """Whether `.venv-interop/<name>` was made from the pins as they are now (and finished installing)."""
    stamp = VENVS / name / FINGERPRINT
    return python(name).is_file() and stamp.is_file() and stamp.read_text() == _fingerprint(name)


def framework_pythons(names: list[str]) -> dict[str, Path]:
    """Each framework's venv interpreter, installing (in parallel) every venv that is missing or out of date."""
    VENVS.mkdir(exist_ok=True)
    with (VENVS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installs = {name: _start_install(name) for name in names if not is_ready(name)}
        failures = []
        for name, process in installs.items():
            try:
                returncode = process.wait(timeout=INSTALL_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                returncode = process.wait()
            log = (VENVS / name / "install.log").read_text(errors="replace")
            if returncode != 0:
                failures.append(f"{name} (pip exited {returncode}):\n{log[-3000:]}")
            else:
                (VENVS / name / FINGERPRINT).write_text(_fingerprint(name))
        assert not failures, "agent frameworks could not be installed from PyPI:\n" + "\n".join(failures)
    return {name: python(name) for name in names}


def _start_install(name: str) -> subprocess.Popen[bytes]:
    """A fresh venv for `name`, and pip installing its pins into it (still running when this returns)."""
    venv = VENVS / name
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    with (venv / "install.log").open("wb") as log:
        return subprocess.Popen(
            [str(python(name)), "-m", "pip", "install", "--quiet", "--no-input", "-r", str(requirements(name))],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
