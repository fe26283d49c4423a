"""Asking the user before a paid video is created (`PIXVERSE_MCP_CONFIRM_PAID=true`), through elicitation, and the
client's roots (the folders whose files an agent may name).

Both are SDK resolvers that run before the tool body. On the 2026-07-28 protocol a question is a round of the call
itself (the call answers `input_required`; the client calls again with the answer and a sealed state); on the 2025
protocol it is a request to the client in the middle of the call, which this module bounds by the wait budget (a
client that never answers gets a `not_created` result, not a hang). The rules kept here:
- the question is built from the arguments and the video's estimated cost only (the SDK accepts an answer only to
  the very question it asked: a text that changed each round would ask forever; the estimate changes only when
  the price does, and then asking again is right);
- nobody is asked when the cap would refuse anyway, or when an input cannot be used: the tool says so instead;
- only a real JSON `true` is a yes: "yes", 1 and "true" are not, and a malformed answer creates nothing;
- an accepted answer pays for one create: `ConfirmationTokens` gives the tool a digest of the sealed state the
  answer came with, which storage binds to the create it pays for, so a replay (a client retrying after a
  timeout, another replica) gets that generation instead of a second one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import unquote, urlsplit

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, ListRoots, Resolve
from mcp_types import ListRootsResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field, ValidationError, WithJsonSchema

from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.models import LipSyncRequest, VideoRequest
from pixverse_mcp.views import dollars

logger = logging.getLogger(__name__)

# The protocol revision from which a question is a round of the call itself, not a request to the client.
_ROUND_TRIP_REVISION: Final = "2026-07-28"
_PROMPT_SHOWN: Final = 300
_ROOTS_SECONDS: Final = 10.0
# What may come before a create, the client's roots or a price list still to fetch, takes at most this share of the
# call's budget each: the question, the create and the wait share the rest.
BEFORE_CREATE_SHARE: Final = 0.25
CONFIRMATION_KEY: Final = "io.github.pixverse-mcp/confirmation"
"""Where `ConfirmationTokens` puts the digest of the sealed state in the request's `_meta`."""
_INPUT_FIELDS: Final = ("image", "last_frame", "video", "audio")


class PaidConfirmation(BaseModel):
    """The form the user sees: one box to tick. Published as a boolean; any answer is read, and only `true` is a
    yes (a malformed answer must mean no, not an error)."""

    confirm: Annotated[
        Any,
        WithJsonSchema(
            {
                "type": "boolean",
                "title": "Create this paid video?",
                "description": "Leave it unticked, or decline, and nothing is created.",
            }
        ),
    ] = Field(default=None)


@dataclass(frozen=True)
class NotAsked:
    """The user was not asked: `allowed` says whether the tool may go on (confirmation off, or a client that
    cannot be asked), else `reason` says why it must not (the cap, an input)."""

    allowed: bool
    reason: Literal["off", "cannot_ask", "over_cap", "invalid_input", "no_key", "replayed"] = "off"
    spent_usd: float = 0.0
    estimate_usd: float = 0.0


@dataclass(frozen=True)
class Unanswered:
    """A 2025-era client took longer than the budget to answer (or could not): nothing is created."""

    seconds: float


@dataclass(frozen=True)
class Answered:
    """A 2025-era client's answer, asked in the middle of the call, and how long that took (it counts against the
    call's budget)."""

    confirm: Any
    seconds: float


Decision = NotAsked | Unanswered | Answered | PaidConfirmation
"""What asking came to (wrapped by the SDK in an elicitation result)."""


def client_roots(ctx: Context[Any, Any]) -> ListRoots | None:
    """A request for the client's roots on the 2026-07-28 protocol, when an argument names a local file and the
    client offers roots; None otherwise (on the 2025 protocol `roots_now` asks, bounded in time)."""
    arguments = _arguments(ctx)
    local = [arguments.get(name) for name in _INPUT_FIELDS if _looks_local(arguments.get(name))]
    capabilities = ctx.client_capabilities
    if not local or capabilities is None or capabilities.roots is None:
        return None
    if _round_trips(ctx):
        return ListRoots()
    return None  # asked in `roots_now` (the SDK's own mid-call request has no time limit)


async def roots_now(ctx: Context[Any, Any], listed: ListRootsResult | None) -> list[Path]:
    """The root folders from a round's answer, or (on the 2025 protocol) asked now, within `_ROOTS_SECONDS` and a
    quarter of the call's budget."""
    if isinstance(listed, ListRootsResult):
        return _folders(listed)
    arguments = _arguments(ctx)
    capabilities = ctx.client_capabilities
    wants = any(_looks_local(arguments.get(name)) for name in _INPUT_FIELDS)
    if not wants or capabilities is None or capabilities.roots is None or _round_trips(ctx):
        return []
    session = ctx.request_context.session
    if not session.can_send_request:
        return []
    with anyio.move_on_after(min(_ROOTS_SECONDS, BEFORE_CREATE_SHARE * call_budget(ctx))):
        try:
            return _folders(await session.list_roots())
        except Exception:  # a client that answers roots/list with an error offers no roots
            logger.info("the client's roots/list failed: no roots")
    return []


Roots = Annotated[ListRootsResult | None, Resolve(client_roots)]
"""A tool parameter filled by asking the client for its roots (never by the model)."""


async def ask_before_paying(ctx: Context[Any, Any], roots: Roots) -> Elicit[PaidConfirmation] | Decision:
    """The question before a create, or why there is none (see the module docstring)."""
    app = ctx.request_context.lifespan_context
    settings = app.settings
    if not settings.confirm_paid:
        return NotAsked(allowed=True, reason="off")
    if not can_ask(ctx):
        return NotAsked(allowed=True, reason="cannot_ask")
    if app.service is None:
        return NotAsked(allowed=False, reason="no_key")
    token = confirmation_token(ctx)
    if token is not None and await _already_paid(app, token):
        # A replay of an answer that paid already (a retry after a timeout): no question, the create it paid for.
        return NotAsked(allowed=True, reason="replayed")
    arguments = _arguments(ctx)
    request = _request(arguments)
    try:
        folders = await roots_now(ctx, roots)
        prepared = await app.service.prepare(request, folders=folders, within=BEFORE_CREATE_SHARE * call_budget(ctx))
    except PixVerseError:
        return NotAsked(allowed=False, reason="invalid_input")
    spent = await app.service.spending.over_cap(prepared.estimate) if token is None else None
    if spent is not None:  # (on the answer's round the claim decides: the answer may have paid already)
        return NotAsked(False, "over_cap", spent_usd=spent, estimate_usd=prepared.estimate.usd)
    question = Elicit(_question(request, prepared.estimate.usd), PaidConfirmation)
    if _round_trips(ctx):
        return question
    budget = call_budget(ctx)
    began = anyio.current_time()
    with anyio.move_on_after(budget):
        try:
            answer = await ctx.elicit(question.message, PaidConfirmation)
        except (ValueError, ValidationError):
            return Answered(None, anyio.current_time() - began)  # an answer we cannot read is a no
        ticked = answer.data.confirm if isinstance(answer, AcceptedElicitation) else False
        return Answered(ticked, anyio.current_time() - began)
    return Unanswered(budget)


Confirmation = Annotated[ElicitationResult[Any], Resolve(ask_before_paying)]
"""A tool parameter filled by asking (never by the model: it is not in the input schema)."""


def can_ask(ctx: Context[Any, Any]) -> bool:
    """Whether this client can be asked: it declared form elicitation, and (on the 2025 protocol) there is a way
    back to it in the middle of a call."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    return _round_trips(ctx) or bool(ctx.request_context.session.can_send_request)


def decision_of(answer: ElicitationResult[Any]) -> Decision:
    """What asking came to: the tool's answer (not asked, no answer in time) or the user's form (declining and
    cancelling are a form with no tick)."""
    data = answer.data if isinstance(answer, AcceptedElicitation) else None
    if isinstance(data, NotAsked | Unanswered | Answered | PaidConfirmation):
        return data
    return PaidConfirmation(confirm=False)


def said_yes(decision: Decision) -> bool:
    """Whether the user was asked and ticked the box (a real `true`: "yes", 1 and "true" are not)."""
    return isinstance(decision, Answered | PaidConfirmation) and decision.confirm is True


def bound_to(decision: Decision, ctx: Context[Any, Any]) -> str | None:
    """The confirmation a create must be bound to (so it pays once): the user's yes, or a replay of one."""
    replayed = isinstance(decision, NotAsked) and decision.reason == "replayed"
    return confirmation_token(ctx) if said_yes(decision) or replayed else None


async def _already_paid(app: Any, token: str) -> bool:
    try:
        used: bool = await app.storage.confirmation_used(token)
    except PixVerseError:
        return False  # the claim will say what is wrong with storage
    return used


def asking_seconds(decision: Decision) -> float:
    """How much of the call's budget the question took (on the 2025 protocol, where it is asked mid-call)."""
    return decision.seconds if isinstance(decision, Answered | Unanswered) else 0.0


class ConfirmationTokens:
    """Server middleware (outermost, before the SDK unseals the request state): hands the tool a digest of the
    sealed `requestState` a `tools/call` came with, in the request's `_meta`, and drops any such key a client sent
    itself. The SDK seals each round's state afresh, so the digest names one answer of one question."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        meta = {key: value for key, value in (ctx.meta or {}).items() if key != CONFIRMATION_KEY}
        state = (ctx.params or {}).get("requestState")
        if isinstance(state, str) and state:
            meta[CONFIRMATION_KEY] = hashlib.sha256(state.encode()).hexdigest()
        return await call_next(replace(ctx, meta=meta))  # type: ignore[arg-type]


def confirmation_token(ctx: Context[Any, Any]) -> str | None:
    """The digest `ConfirmationTokens` left for this call, if its arguments came with a sealed state."""
    meta: Mapping[str, Any] | None = ctx.request_context.meta
    token = meta.get(CONFIRMATION_KEY) if meta else None
    return token if isinstance(token, str) else None


def _question(request: VideoRequest | LipSyncRequest, estimate: float) -> str:
    if isinstance(request, LipSyncRequest):
        what = f"lip-sync of the video {_short(request.video)}"
    else:
        shape = f", {request.aspect_ratio}" if request.aspect_ratio else ""
        source = f" from the image {_short(request.image)}" if request.image else ""
        what = (
            f"PixVerse {request.model_version} video ({request.duration} s, {request.resolution}{shape}){source} of: "
            f"“{_short(request.prompt, _PROMPT_SHOWN)}”"
        )
    return f"Create a paid {what}. Estimated cost: about {dollars(estimate)}."


def _request(arguments: Mapping[str, Any]) -> VideoRequest | LipSyncRequest:
    """The request the (already checked) arguments make."""
    if "video" in arguments:
        return LipSyncRequest(**{name: arguments[name] for name in LipSyncRequest.model_fields if name in arguments})
    return VideoRequest(**{name: arguments[name] for name in VideoRequest.model_fields if name in arguments})


def call_budget(ctx: Context[Any, Any]) -> float:
    """The budget of the call being resolved: its own `timeout_seconds` when it gave one the tool accepts, else the
    server's wait budget (the question and what comes before the create count against it)."""
    settings = ctx.request_context.lifespan_context.settings
    given = _arguments(ctx).get("timeout_seconds")
    if isinstance(given, int | float) and not isinstance(given, bool) and 1 <= given <= settings.max_wait_seconds:
        return float(given)
    budget: float = settings.wait_budget_seconds
    return budget


def _arguments(ctx: Context[Any, Any]) -> Mapping[str, Any]:
    arguments = (ctx.request_context.params or {}).get("arguments")
    return arguments if isinstance(arguments, Mapping) else {}


def _round_trips(ctx: Context[Any, Any]) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, _ROUND_TRIP_REVISION)


def _looks_local(reference: object) -> bool:
    return isinstance(reference, str) and not reference.startswith(("https://", "http://", "data:"))


def _folders(listed: ListRootsResult) -> list[Path]:
    folders = []
    for root in listed.roots:
        parts = urlsplit(str(root.uri))
        if parts.scheme == "file" and parts.path:
            folders.append(Path(unquote(parts.path)))
    return folders


def _short(text: str | None, limit: int = 80) -> str:
    text = text or ""
    if text.startswith("data:"):
        return "(sent inline)"
    return text if len(text) <= limit else text[:limit] + "…"
