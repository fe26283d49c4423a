"""Asking the user before a paid video is created (`PIXVERSE_MCP_CONFIRM_PAID=true`), through elicitation.

The question is an SDK resolver (`Resolve(ask_before_paying)`): on the 2025 protocol it is a request to the client in
the middle of the call; on 2026-07-28 the call answers `input_required` and the client calls again with the answer.
Two rules follow from that second form, and this module keeps both:
- the question is built from the arguments and the settings only (never a live price, a time, the day's spend):
  the SDK accepts an answer only to the very question it asked, so a changing text would ask forever;
- asking has no side effect: the resolver runs again on every round.

A client that cannot be asked (it declared no elicitation, or a 2025-era client over stateless or JSON-response
HTTP, which has no way back to it) is not asked: the call goes on under the spending cap, as the README says.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

# The protocol revision from which a question is a round of the call itself, not a request to the client.
_ROUND_TRIP_REVISION = "2026-07-28"
_PROMPT_SHOWN = 300


class PaidConfirmation(BaseModel):
    """The form the user sees: one box to tick."""

    confirm: bool = Field(
        title="Create this paid video?", description="Leave it unticked, or decline, and nothing is created."
    )


async def ask_before_paying(
    ctx: Context[Any, Any], prompt: str, aspect_ratio: str, resolution: str, duration: int
) -> Elicit[PaidConfirmation] | PaidConfirmation:
    """The question before a create (or an answer of yes without asking, when confirmation is off or impossible)."""
    settings = ctx.request_context.lifespan_context.settings
    if not settings.confirm_paid or not can_ask(ctx):
        return PaidConfirmation(confirm=True)
    shown = prompt if len(prompt) <= _PROMPT_SHOWN else prompt[:_PROMPT_SHOWN] + "…"
    return Elicit(
        f"Create a paid PixVerse video ({duration} s, {resolution}, {aspect_ratio}) of: “{shown}”. "
        f"Estimated cost: about ${settings.cost_estimate_usd:.2f}.",
        PaidConfirmation,
    )


def can_ask(ctx: Context[Any, Any]) -> bool:
    """Whether this client can be asked: it declared form elicitation, and (on the 2025 protocol) there is a way
    back to it in the middle of a call."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _ROUND_TRIP_REVISION):
        return True
    return bool(ctx.request_context.session.can_send_request)


Confirmation = Annotated[ElicitationResult[PaidConfirmation], Resolve(ask_before_paying)]
"""A tool parameter filled by asking (never by the model: it is not in the input schema)."""


def confirmed(answer: ElicitationResult[PaidConfirmation]) -> bool:
    """Yes only for an accepted form with the box ticked (decline, cancel and an unticked box all mean no)."""
    return isinstance(answer, AcceptedElicitation) and answer.data.confirm
