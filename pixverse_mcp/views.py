"""How the journal and a wait look to a person or an agent, whatever shows them: the MCP results (`results.py`), the
protocol tasks and the terminal all use these, so they never say the same thing two ways."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from pixverse_mcp.models import GenerationStatus
from pixverse_mcp.storage import JournalEntry, PendingCreate

CreateState = Literal["creating", "settling", "never_received", "outcome_unknown"]


def progress_message(status: GenerationStatus | None, elapsed: float, expected: float) -> str:
    """A line a person can read: "generating, 24 s elapsed, about 15 s left"."""
    label = status.value if status is not None else "waiting for the first status"
    if status is not None and status.is_final:
        return f"{label} after {elapsed:.0f} s"
    if elapsed <= expected:
        return f"{label}, {elapsed:.0f} s elapsed, about {max(1, round(expected - elapsed))} s left"
    return f"{label}, {elapsed:.0f} s elapsed, taking longer than the usual {expected:.0f} s"


def dollars(amount: float) -> str:
    """$0.42"""
    return f"${amount:.2f}"


class JournalVideo(BaseModel):
    """One generation as the journal remembers it."""

    generation_id: str
    status: GenerationStatus
    created_at: str = Field(description="When we received the id (ISO 8601, UTC).")
    updated_at: str = Field(description="When we last heard of it (ISO 8601, UTC).")
    model: str | None = Field(default=None, description="The PixVerse model that made it.")
    prompt: str | None = None
    options: dict[str, Any] | None = Field(
        default=None, description="The other request fields (resolution, ...; inputs as where they came from)."
    )
    video_url: str | None = None
    error: str | None = None
    cost_usd: float | None = Field(default=None, description="What it cost (an estimate when cost_estimated).")
    cost_estimated: bool = False
    usage: dict[str, Any] | None = None
    local_path: str | None = None


class UncertainCreate(BaseModel):
    """A create that was sent but never answered with an id (a lost connection, a crash), and how it stands."""

    created_at: str = Field(description="When it was sent (ISO 8601, UTC).")
    prompt: str | None = None
    options: dict[str, Any] | None = None
    state: CreateState = Field(
        description="creating: being sent right now; settling: its answer was lost and the provider's request log "
        "is being searched for it (an identical call re-attaches if it was received, or creates it if not); "
        "never_received: settled, the provider never received it and nothing was charged; outcome_unknown: from "
        "an older version, only the AI/ML API usage page can tell."
    )
    settle_until: str | None = Field(default=None, description="While settling: when the search gives up.")
    detail: str | None = None


_STATES: dict[str, CreateState] = {
    "sending": "creating",
    "settling": "settling",
    "never_received": "never_received",
    "unknown": "outcome_unknown",
}


def request_fields(request: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """(prompt, the other fields) of a journaled request."""
    options = dict(request or {})
    prompt = options.pop("prompt", None)
    options.pop("model", None)
    return (prompt if isinstance(prompt, str) else None), (options or None)


def journal_video(entry: JournalEntry) -> JournalVideo:
    """An entry in the shape agents see."""
    prompt, options = request_fields(entry.request)
    return JournalVideo(
        generation_id=entry.generation_id,
        status=entry.status,
        created_at=iso(entry.created_at),
        updated_at=iso(entry.updated_at),
        model=entry.model,
        prompt=prompt,
        options=options,
        video_url=entry.video_url,
        error=entry.error,
        cost_usd=None if entry.cost_usd is None else round(entry.cost_usd, 4),
        cost_estimated=entry.cost_estimated,
        usage=entry.usage,
        local_path=entry.local_path,
    )


def uncertain_create(pending: PendingCreate) -> UncertainCreate:
    """A create without an id, in the shape agents see."""
    prompt, options = request_fields(pending.request)
    state = _STATES.get(pending.state, "outcome_unknown")
    return UncertainCreate(
        created_at=iso(pending.created_at),
        prompt=prompt,
        options=options,
        state=state,
        settle_until=iso(pending.settle_until) if state == "settling" and pending.settle_until else None,
        detail=pending.detail,
    )


def iso(epoch_seconds: float) -> str:
    """An instant as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")
