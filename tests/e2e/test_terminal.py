"""The terminal commands as a person runs them (`python -m pixverse_mcp generate | lip-sync | status | download |
list | balance`) as real subprocesses: every promise they print is kept."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

import pixverse_mcp
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox
from tests.conftest import server_env

COMMAND = [sys.executable, "-m", "pixverse_mcp"]
# How these tests run it, so how its hints and usage name it.
INVOKED = f"{Path(sys.executable).name} -m pixverse_mcp"


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def create_directly(sandbox: RunningSandbox, prompt: str) -> str:
    response = httpx2.post(
        f"{sandbox.url}/v2/video/generations",
        json={"model": "pixverse/v5/text-to-video", "prompt": prompt},
        headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"},
    )
    response.raise_for_status()
    return str(response.json()["id"])


def test_generate_waits_downloads_and_prints_the_path_and_url(sandbox: RunningSandbox, tmp_path: Path) -> None:
    out = tmp_path / "videos"

    finished = run(server_env(sandbox, tmp_path), "generate", "a fox in the snow", "--out", str(out))

    assert finished.returncode == 0, finished.stderr
    path_line, url_line = finished.stdout.strip().splitlines()
    saved = Path(path_line)
    assert saved.parent == out.resolve()
    assert saved.read_bytes()[4:8] == b"ftyp"
    assert url_line.startswith(f"{sandbox.url}/_sandbox/videos/")
    assert "Started generation" in finished.stderr
    assert sandbox.state.stats()["creates"] == 1


def test_generate_refuses_invalid_options_with_exit_2_and_sends_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    finished = run(server_env(sandbox, tmp_path), "generate", "a fox", "--resolution", "1080p", "--duration", "8")

    assert finished.returncode == 2
    assert "1080p" in finished.stderr
    assert sandbox.state.stats()["creates"] == 0


def test_a_failed_generation_exits_1(sandbox: RunningSandbox, tmp_path: Path) -> None:
    finished = run(server_env(sandbox, tmp_path), "generate", "a fox [sandbox:fail]", "--out", str(tmp_path))

    assert finished.returncode == 1
    assert "failed" in finished.stderr


def test_without_a_key_commands_exit_3_and_say_how_to_set_it(tmp_path: Path) -> None:
    finished = run(server_env(None, tmp_path), "generate", "a fox")

    assert finished.returncode == 3
    assert "AIMLAPI_API_KEY" in finished.stderr


def test_status_prints_a_completed_generation_and_exits_0(sandbox: RunningSandbox, tmp_path: Path) -> None:
    generation_id = create_directly(sandbox, "a heron")

    finished = run(server_env(sandbox, tmp_path), "status", generation_id, "--wait", "30")

    assert finished.returncode == 0, finished.stderr
    path_line, url_line = finished.stdout.strip().splitlines()
    assert Path(path_line).parent == tmp_path / "user-videos" / "pixverse"  # kept by default: its URL expires
    assert url_line.startswith(f"{sandbox.url}/_sandbox/videos/")


def test_status_of_a_running_generation_exits_6_with_how_to_resume(sandbox: RunningSandbox, tmp_path: Path) -> None:
    generation_id = create_directly(sandbox, "a heron [sandbox:fault=never_completes]")

    finished = run(server_env(sandbox, tmp_path), "status", generation_id)

    assert finished.returncode == 6
    assert finished.stdout.strip() == f"{generation_id} generating"
    assert f"{INVOKED} status '{generation_id}' --wait" in finished.stderr


def test_status_of_an_unknown_id_exits_4(sandbox: RunningSandbox, tmp_path: Path) -> None:
    finished = run(server_env(sandbox, tmp_path), "status", "no-such-generation")

    assert finished.returncode == 4
    assert "404" in finished.stderr


def test_list_prints_the_journal_without_needing_a_key(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = server_env(sandbox, tmp_path)
    assert run(env, "generate", "a lighthouse at dusk", "--out", str(tmp_path)).returncode == 0

    del env["AIMLAPI_API_KEY"]
    finished = run(env, "list")

    assert finished.returncode == 0, finished.stderr
    (line, spend) = finished.stdout.splitlines()  # not a terminal: a tab-separated line per generation, then spend
    assert spend.startswith("# spent ")
    assert "$0.42 (1 videos)" in spend
    created, status, generation_id, video, model, prompt = line.split("\t")
    assert (status, model, prompt) == ("completed", "v5/text-to-video", "a lighthouse at dusk")
    assert created.endswith("+00:00")
    assert generation_id in sandbox.state.generations
    assert Path(video).is_file()


def test_ctrl_c_during_a_wait_prints_the_id_and_how_to_resume(sandbox: RunningSandbox, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*COMMAND, "generate", "a slow one [sandbox:fault=never_completes]", "--out", str(tmp_path)],
        env=server_env(sandbox, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a shell without job control does (CI, a background job): SIGINT starts out ignored. Ctrl-C at a
        # terminal must still interrupt: the CLI installs its own handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 30
        while sandbox.state.stats()["status_requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:  # never leave it polling after a failure
            process.kill()
            process.communicate()

    (generation_id,) = sandbox.state.generations
    assert process.returncode == 130
    assert generation_id in stderr
    assert f"{INVOKED} status '{generation_id}' --wait" in stderr


def test_the_built_in_sandbox_needs_no_key(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PIXVERSE_MCP_STATE_DIR": str(tmp_path / "state")}

    finished = run(env, "generate", "a paper boat", "--sandbox", "--out", str(tmp_path))

    assert finished.returncode == 0, finished.stderr
    assert Path(finished.stdout.splitlines()[0]).is_file()


@pytest.mark.parametrize(
    "command",
    [["--help"], *([name, "--help"] for name in ("generate", "lip-sync", "status", "download", "list", "balance"))],
)
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    finished = run(server_env(None, tmp_path), *command)

    assert finished.returncode == 0
    assert f"usage: {INVOKED}" in finished.stdout


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    finished = run(server_env(None, tmp_path), "--version")

    assert finished.returncode == 0
    assert finished.stdout.strip() == f"{INVOKED} {pixverse_mcp.__version__}"


def test_generate_help_lists_every_allowed_value_and_default(tmp_path: Path) -> None:
    help_text = " ".join(run(server_env(None, tmp_path), "generate", "--help").stdout.split())

    for value in ("16:9", "9:16", "360p", "1080p", "anime", "cyberpunk", "2147483647"):
        assert value in help_text
    assert 'default "720p"' in help_text
    assert "Allowed: 5, 8, 10; default 5" in help_text


def test_sandbox_runs_keep_their_own_journal_apart_from_real_runs(sandbox: RunningSandbox, tmp_path: Path) -> None:
    real_env = server_env(sandbox, tmp_path)
    assert run(real_env, "generate", "a real one", "--out", str(tmp_path / "real")).returncode == 0
    no_key = {"PATH": os.environ.get("PATH", ""), "PIXVERSE_MCP_STATE_DIR": real_env["PIXVERSE_MCP_STATE_DIR"]}
    assert run(no_key, "generate", "a pretend one", "--sandbox", "--out", str(tmp_path / "pretend")).returncode == 0

    real = run(no_key, "list").stdout
    pretend = run(no_key, "list", "--sandbox").stdout

    assert "a real one" in real
    assert "a pretend one" not in real
    assert "a pretend one" in pretend
    assert "a real one" not in pretend
    [line] = [line for line in pretend.splitlines() if not line.startswith("#")]
    generation_id = line.split("\t")[2]
    # A later sandbox run still answers for it (its own sandbox is gone, the generation long finished).
    looked = run(no_key, "status", generation_id, "--sandbox")
    assert looked.returncode == 0, looked.stderr
    assert "/_sandbox/videos/" in looked.stdout


# --- the promises the terminal prints, kept -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["a file", "beneath a file"])
def test_an_unusable_out_folder_is_refused_before_anything_is_paid(
    sandbox: RunningSandbox, tmp_path: Path, kind: str
) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    out = a_file if kind == "a file" else a_file / "videos"

    finished = run(server_env(sandbox, tmp_path), "generate", "a fox", "--out", str(out))

    assert finished.returncode == 2
    assert "Nothing was sent" in finished.stderr
    assert sandbox.state.stats()["creates"] == 0


@pytest.mark.parametrize("timeout", ["0", "-5", "nan", "100000"])
def test_a_timeout_the_tool_would_refuse_is_refused_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path, timeout: str
) -> None:
    finished = run(server_env(sandbox, tmp_path), "generate", "a fox", "--timeout", timeout)

    assert finished.returncode == 2
    assert "--timeout" in finished.stderr
    assert sandbox.state.stats()["creates"] == 0


def test_the_resume_hint_after_a_sandbox_run_works_as_printed(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PIXVERSE_MCP_STATE_DIR": str(tmp_path / "state")}
    started = run(env, "generate", "never done [sandbox:fault=never_completes]", "--sandbox", "--timeout", "2")
    assert started.returncode == 6, started.stderr
    [hint] = [line for line in started.stderr.splitlines() if "Resume with:" in line]
    command = hint.split("Resume with: ", 1)[1]
    assert command.startswith(INVOKED)
    assert command.endswith("--sandbox")

    resumed = run(env, *shlex.split(command.removeprefix(INVOKED))[:-3], "--wait", "1", "--sandbox")

    assert resumed.returncode != 3, resumed.stderr  # not "No AI/ML API key": the hint kept --sandbox


def test_a_wait_that_ran_out_is_finished_and_saved_by_status_with_out(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = server_env(sandbox, tmp_path)
    sandbox.state.config.generating_seconds = 3
    started = run(env, "generate", "a slow heron", "--timeout", "1", "--out", str(tmp_path / "first"))
    assert started.returncode == 6, started.stderr
    generation_id = started.stdout.split()[0]

    finished = run(env, "status", generation_id, "--wait", "30", "--out", str(tmp_path / "later"))

    assert finished.returncode == 0, finished.stderr
    saved = Path(finished.stdout.splitlines()[0])
    assert saved.parent == (tmp_path / "later").resolve()
    assert saved.read_bytes()[4:8] == b"ftyp"


def test_download_saves_a_finished_video_by_its_id(sandbox: RunningSandbox, tmp_path: Path) -> None:
    generation_id = create_directly(sandbox, "a heron to keep")
    time.sleep(2)

    finished = run(server_env(sandbox, tmp_path), "download", generation_id, "--out", str(tmp_path / "kept"))

    assert finished.returncode == 0, finished.stderr
    assert Path(finished.stdout.strip()).parent == (tmp_path / "kept").resolve()


def test_the_cost_prints_in_dollars(sandbox: RunningSandbox, tmp_path: Path) -> None:
    finished = run(server_env(sandbox, tmp_path), "generate", "a priced fox")

    assert finished.returncode == 0, finished.stderr
    assert "Cost: $0.42" in finished.stderr
    assert "tokens_used" not in finished.stderr + finished.stdout


def test_list_shows_exactly_the_rows_asked_for(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = server_env(sandbox, tmp_path)
    for index in range(4):
        assert run(env, "generate", f"fox {index}", "--timeout", "30").returncode == 0
    sandbox.state.inject("accepted_reset", method="POST")
    run(env, "generate", "a lost answer", "--timeout", "1")  # an uncertain create: one more row

    finished = run(env, "list", "--limit", "3")

    rows = [line for line in finished.stdout.splitlines() if not line.startswith("#")]
    assert len(rows) == 3


def test_a_sandbox_run_says_where_it_saves_and_keeps_its_videos_apart(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PIXVERSE_MCP_STATE_DIR": str(tmp_path / "state"),
        "PIXVERSE_MCP_OUTPUT_DIR": str(tmp_path / "real-videos"),
    }

    finished = run(env, "generate", "a pretend boat", "--sandbox")

    assert finished.returncode == 0, finished.stderr
    saved = Path(finished.stdout.splitlines()[0])
    assert saved.parent == tmp_path / "state" / "sandbox" / "videos"
    assert f"sandbox videos go to {saved.parent}" in finished.stderr
    assert not (tmp_path / "real-videos").exists()


def test_balance_prints_the_account_and_the_day(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_DAILY_BUDGET_USD="5")
    assert run(env, "generate", "a paid fox").returncode == 0

    finished = run(env, "balance")

    assert finished.returncode == 0, finished.stderr
    assert "balance: $99.58" in finished.stdout
    assert "spent today (UTC): $0.42" in finished.stdout
    assert "daily cap: $5.00 ($4.58 left)" in finished.stdout


def test_the_family_from_the_terminal(sandbox: RunningSandbox, tmp_path: Path) -> None:
    from PIL import Image

    env = server_env(sandbox, tmp_path)
    first, last = tmp_path / "first.png", tmp_path / "last.png"
    Image.new("RGB", (32, 18), (200, 80, 40)).save(first)
    Image.new("RGB", (32, 18), (40, 80, 200)).save(last)

    sound = run(
        env, "generate", "waves", "--image", str(first), "--model-version", "v5.5", "--duration", "10", "--audio"
    )
    joined = run(env, "generate", "day to night", "--image", str(first), "--last-frame", str(last))
    made = [line.split("\t") for line in run(env, "list").stdout.splitlines() if not line.startswith("#")]
    [transition_id] = [row[2] for row in made if row[4] == "v5/transition"]
    spoken = run(env, "lip-sync", transition_id, "--text", "Good evening.", "--voice", "Ava")

    assert sound.returncode == joined.returncode == spoken.returncode == 0, sound.stderr + joined.stderr + spoken.stderr
    bodies = [record.body for record in sandbox.state.generations.values()]
    [with_sound] = [body for body in bodies if body["model"] == "pixverse/v5.5/image-to-video"]
    assert (with_sound["duration"], with_sound["generate_audio_switch"]) == (10, True)
    assert with_sound["image_url"].startswith("data:image/png;base64,")
    [transition] = [body for body in bodies if body["model"] == "pixverse/v5/transition"]
    assert transition["tail_image_url"].startswith("data:image/png;base64,")
    [lip_sync] = [body for body in bodies if body["model"] == "pixverse/lip-sync"]
    assert (lip_sync["lip_sync_tts_content"], lip_sync["lip_sync_tts_speaker"]) == ("Good evening.", "Ava")
