"""The API key never leaves, in process: not in the reprs of the client, the settings or the app, nor in any error the
client raises (including for keys pasted with stray characters), against a sandbox that accepts only a distinctive
key. (The real server's stdout and stderr at DEBUG, over stdio, and the terminal's: tests/e2e/test_secrets.py.)
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from pixverse_mcp._retry import RetryPolicy
from pixverse_mcp.app import open_app
from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import Settings, load_settings
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.models import VideoRequest
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig, SandboxState

pytestmark = pytest.mark.anyio

KEY_SECRET_PART = secrets.token_hex(16)
KEY = f"sk-distinctive-{KEY_SECRET_PART}"
# Any 10 characters in a row of the secret part: a key split by a line break, escaped or cut short still shows.
SECRET_WINDOWS = tuple(KEY_SECRET_PART[start : start + 10] for start in range(len(KEY_SECRET_PART) - 9))
SECRET_SANDBOX = SandboxConfig(
    api_key=KEY, queued_seconds=0.1, generating_seconds=0.2, slow_seconds=0.2, retry_after_seconds=0
)
POLL_SCALE = 0.009
# The module's sandbox (`reset_sandbox` for each test): it accepts only the distinctive key.
SANDBOX = SECRET_SANDBOX
# Keys as people paste them: a newline from a file, a space, a line break inside, a zero-width space from a web page.
MALFORMED_KEYS = {
    "trailing-newline": f"{KEY}\n",
    "trailing-space": f"{KEY} ",
    "inner-newline": f"{KEY[:20]}\n{KEY[20:]}",
    "zero-width-space": f"{KEY}\u200b",
}


def assert_no_key(text: str | bytes | bytearray, where: str) -> None:
    """Neither the key nor its secret part (a truncated or re-wrapped key is still a leak)."""
    haystack = text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")
    for needle in (KEY, *SECRET_WINDOWS):
        at = haystack.find(needle)
        if at >= 0:
            # Show where, without printing the key once more in the test report.
            context = haystack[max(0, at - 200) : at + 200]
            for part in (KEY_SECRET_PART, *SECRET_WINDOWS):
                context = context.replace(part, "<KEY>")
            pytest.fail(f"the API key appears in {where}: ...{context}...", pytrace=False)


def everything_about(error: BaseException) -> str:
    """str, repr, args, body and the formatted traceback of an error and of every error in its chain."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), str(getattr(current, "body", ""))]
        current = current.__cause__ or current.__context__
    parts.append("".join(traceback.format_exception(error)))
    return "\n".join(parts)


def test_reprs_of_the_client_and_the_settings_never_show_the_key(tmp_path: Path) -> None:
    client = PixVerseClient(api_key=KEY, base_url="http://127.0.0.1:9")
    settings = Settings(api_key=SecretStr(KEY), base_url="http://127.0.0.1:9", state_dir=tmp_path)
    loaded = load_settings({"AIMLAPI_API_KEY": KEY, "PIXVERSE_MCP_STATE_DIR": str(tmp_path)})

    assert loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == KEY
    for shown in (
        repr(client),
        str(client),
        repr(settings),
        str(settings),
        repr(loaded),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.api_key),
    ):
        assert_no_key(shown, shown[:60])


async def test_the_app_repr_never_shows_the_key(tmp_path: Path) -> None:
    settings = Settings(api_key=SecretStr(KEY), base_url="http://127.0.0.1:9", state_dir=tmp_path)
    async with open_app(settings) as app:
        assert_no_key(repr(app), "the app's repr")
        assert app.service is not None
        assert_no_key(repr(app.service.client), "the service's client repr")


def fast_client(key: str, sandbox: RunningSandbox) -> PixVerseClient:
    """A client on the sandbox with retries and polling shrunk to the sandbox's pace."""
    return PixVerseClient(
        api_key=key,
        base_url=sandbox.url,
        retry_policy=RetryPolicy(base_delay=0.01, max_delay=0.05),
        polling_policy=PollingPolicy(time_scale=POLL_SCALE),
    )


Scenario = Callable[[PixVerseClient, SandboxState, str], Awaitable[object]]


async def _create(client: PixVerseClient, state: SandboxState, fault: str) -> object:
    state.inject(fault, method="POST", count=10)
    return await client.create(VideoRequest(prompt=f"in process: {fault}"))


async def _get(client: PixVerseClient, state: SandboxState, fault: str) -> object:
    generation = await client.create(VideoRequest(prompt=f"in process: get meets {fault}"))
    state.inject(fault, method="GET", count=10)
    return await client.get(generation.id)


async def _wait(client: PixVerseClient, state: SandboxState, fault: str) -> object:
    generation = await client.create(VideoRequest(prompt=f"in process: wait [sandbox:fault={fault}]"))
    return await client.wait(generation.id, timeout=0.5)


RESPONSE_FAULTS = ("unauthorized", "no_credits", "server_error", "gateway_502", "unavailable", "reset", "html_200")


@pytest.mark.parametrize(
    ("scenario", "fault"),
    [(_create, fault) for fault in (*RESPONSE_FAULTS, "incomplete_json", "accepted_500", "accepted_reset")]
    + [(_get, fault) for fault in (*RESPONSE_FAULTS, "no_video_url")]
    + [(_wait, fault) for fault in ("fail", "fail_string", "never_completes", "unauthorized", "no_video_url")],
)
async def test_no_error_the_client_raises_shows_the_key(
    reset_sandbox: RunningSandbox, scenario: Scenario, fault: str
) -> None:
    async with fast_client(KEY, reset_sandbox) as client:
        with pytest.raises(PixVerseError) as raised:
            await scenario(client, reset_sandbox.state, fault)

    assert_no_key(everything_about(raised.value), f"a {type(raised.value).__name__}")


@pytest.mark.parametrize(
    "url", ["not-a-url", "http://127.0.0.1:9/refused.mp4", "{sandbox}/_sandbox/missing/video.mp4"], ids=str
)
async def test_no_download_error_shows_the_key(reset_sandbox: RunningSandbox, tmp_path: Path, url: str) -> None:
    async with fast_client(KEY, reset_sandbox) as client:
        with pytest.raises(PixVerseError) as raised:
            await client.download(url.format(sandbox=reset_sandbox.url), tmp_path, file_name="video.mp4")

    assert_no_key(everything_about(raised.value), "a download error")


async def test_an_unknown_generation_error_never_shows_the_key(reset_sandbox: RunningSandbox) -> None:
    async with fast_client(KEY, reset_sandbox) as client:
        with pytest.raises(PixVerseError) as raised:
            await client.get("no-such-generation")

    assert_no_key(everything_about(raised.value), "a not-found error")


@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
async def test_a_malformed_key_is_trimmed_or_refused_as_a_package_error_that_never_shows_it(
    reset_sandbox: RunningSandbox, key: str
) -> None:
    raised: Exception | None = None
    try:
        async with fast_client(key, reset_sandbox) as client:
            await client.create(VideoRequest(prompt="a malformed key"))
    except Exception as error:  # whatever it is, it must be ours and must not carry the key
        raised = error

    if raised is not None:
        assert_no_key(everything_about(raised), f"a {type(raised).__name__} for a malformed key")
        assert isinstance(raised, PixVerseError), f"{type(raised).__name__} is not a package error"
        # Nothing can have been accepted with a key that never left this process.
        assert "may have been accepted" not in str(raised)
