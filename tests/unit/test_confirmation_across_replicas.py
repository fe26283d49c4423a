"""A confirmation on the 2026-07-28 protocol is two rounds of one call: the question, then the call again with the
answer and a sealed state. Behind a load balancer the second round may reach another replica: with the same
PIXVERSE_MCP_REQUEST_STATE_KEYS it is accepted there (and pays once); with each replica's own random key it is
refused, and nothing is paid.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from pixverse_mcp.app import open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox
from pixverse_mcp.server import build_server

pytestmark = pytest.mark.anyio

SHARED_KEY = "a-shared-request-state-key-of-at-least-32-characters"


async def never_called(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
    raise AssertionError("rounds are driven by hand here")


@asynccontextmanager
async def replica(sandbox: RunningSandbox, state: Path, keys: tuple[str, ...]) -> AsyncIterator[Client]:
    settings = Settings(
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=sandbox.url,
        state_dir=state,
        confirm_paid=True,
        request_state_keys=tuple(SecretStr(key) for key in keys),
    )
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(open_app(settings))
        client = Client(build_server(settings, app), mode="2026-07-28", elicitation_callback=never_called)
        yield await stack.enter_async_context(client)


async def second_round_elsewhere(sandbox: RunningSandbox, tmp_path: Path, keys: tuple[str, ...]) -> object:
    arguments = {"prompt": f"a paper crane {time.time_ns()}"}
    async with replica(sandbox, tmp_path / "a", keys) as first, replica(sandbox, tmp_path / "b", keys) as second:
        asked = await first.session.call_tool("create_video", arguments, allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult)
        [key] = asked.input_requests
        answer = {key: types.ElicitResult(action="accept", content={"confirm": True})}
        try:
            return await second.session.call_tool(
                "create_video",
                arguments,
                input_responses=answer,
                request_state=asked.request_state,
                allow_input_required=True,
            )
        except MCPError as refused:  # caught here: out of the clients' task groups it would be a group
            return refused


async def test_with_shared_keys_the_answer_is_accepted_by_another_replica(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    result = await second_round_elsewhere(sandbox, tmp_path, (SHARED_KEY,))

    assert isinstance(result, types.CallToolResult)
    assert not result.is_error
    assert sandbox.state.stats()["creates"] == 1


async def test_with_a_random_key_per_replica_the_other_one_refuses_it_and_nothing_is_paid(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    refused = await second_round_elsewhere(sandbox, tmp_path, ())

    assert isinstance(refused, MCPError)
    assert "requestState" in str(refused)
    assert sandbox.state.stats()["creates"] == 0


def test_a_short_key_is_refused_naming_the_setting() -> None:
    from pixverse_mcp.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="PIXVERSE_MCP_REQUEST_STATE_KEYS"):
        load_settings({"PIXVERSE_MCP_REQUEST_STATE_KEYS": "too-short"})
