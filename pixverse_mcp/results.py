"""What an agent gets back: one structured shape per tool on every path, a one-line summary, and the next step.

Every result a video tool returns, error or not, is a `VideoResult` (valid against the published `outputSchema`,
so strict clients such as the MCP Inspector and the TypeScript SDK show our words, not a schema error); it names the
generation id once one exists, so a paid video can always be found again. Only a refused call (invalid arguments)
carries no structured content. `safe_result` is the last line: whatever a field holds, the result can be sent.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from mcp_types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from pixverse_mcp.errors import (
    CreateOutcomeUnknownError,
    CreatePendingError,
    GenerationError,
    GenerationLookupError,
    InvalidArgumentError,
    MissingAPIKeyError,
    PixVerseError,
    SpendingCapError,
)
from pixverse_mcp.models import GenerationStatus
from pixverse_mcp.money import AccountStatus
from pixverse_mcp.preview import ContactSheet
from pixverse_mcp.service import Outcome
from pixverse_mcp.storage import JournalEntry, PendingCreate
from pixverse_mcp.text import clean_text
from pixverse_mcp.views import JournalVideo, UncertainCreate, dollars, iso, journal_video, uncertain_create

# Hosts put results in the model's context and refuse them past about 1 MB: stay well under, whatever a field holds.
MAX_RESULT_BYTES: Final = 900_000
# A longer text field (an upstream error message, say) is cut to this many characters once a result is too big.
_LONG_TEXT: Final = 4_000

ResultStatus = Literal["queued", "generating", "completed", "failed", "unknown", "not_created"]


class VideoResult(BaseModel):
    """The state of one generation as a tool reports it (the video tools' `outputSchema`), errors included."""

    generation_id: str | None = Field(
        description="Opaque id of the generation; pass it to get_video_status. null when no generation exists "
        "(nothing was created: refused, declined or over the spending cap; or a create whose outcome is unknown)."
    )
    status: ResultStatus = Field(
        description="queued or generating: still running; completed: video_url is set; failed: error is set; "
        "unknown: its state could not be read, or the provider reported a status we do not know (treated as "
        "still running); not_created: nothing was created and nothing was charged."
    )
    done: bool = Field(description="True when there is nothing more to wait for (completed, failed, not created).")
    video_url: str | None = Field(
        default=None, description="Where to download the video (temporary provider storage: fetch it promptly)."
    )
    error: str | None = Field(default=None, description="What went wrong, when something did.")
    raw_status: str | None = Field(default=None, description="The status exactly as the provider reported it.")
    elapsed_seconds: float | None = Field(default=None, description="How long this call waited, in seconds.")
    estimated_seconds_remaining: float | None = Field(
        default=None, description="Rough time left by the usual figures, while still running."
    )
    usage: dict[str, Any] | None = Field(
        default=None, description="What the provider reported charging for the generation (meta.usage), when known."
    )
    cost_usd: float | None = Field(
        default=None,
        description="What it cost in US dollars: what the provider reported, or the estimate the spending cap "
        "counted when its answer did not say.",
    )
    budget_left_usd: float | None = Field(
        default=None, description="What the server's daily spending cap leaves for today (UTC), when one is set."
    )
    balance_usd: float | None = Field(
        default=None,
        description="The account's balance, given when a cap is set and the balance is below what the cap still "
        "allows today (the balance then runs out first).",
    )
    reattached: bool = Field(
        default=False, description="True when an identical generation already running was re-used (no new charge)."
    )
    local_path: str | None = Field(default=None, description="Where the video was saved on this machine, if it was.")
    file_size_bytes: int | None = Field(default=None, description="Size of the saved file.")
    save_error: str | None = Field(default=None, description="Why saving the video failed, if it did.")
    journal_error: str | None = Field(
        default=None, description="Why the generation could not be recorded in the journal (keep its id yourself)."
    )
    prompt: str | None = Field(default=None, description="What the video was asked to show, when known.")
    model: str | None = Field(default=None, description="The PixVerse model that makes it, when known.")
    next_step: str = Field(description="What to do next, in words an agent can follow.")


@dataclass(frozen=True)
class Money:
    """What a result says about money beyond the video's own cost: the cap's remainder and, when it matters, the
    balance."""

    budget_left_usd: float | None = None
    balance_usd: float | None = None

    def sentences(self, cost: float | None) -> str:
        parts = []
        if cost is not None:
            parts.append(f"Cost: {dollars(cost)}.")
        if self.budget_left_usd is not None:
            parts.append(f"Left today under the spending cap: {dollars(self.budget_left_usd)}.")
        if self.low_balance:
            parts.append(f"The account's balance ({dollars(self.balance_usd or 0)}) is below that: top it up.")
        return "".join(f" {part}" for part in parts)

    @property
    def low_balance(self) -> bool:
        return (
            self.balance_usd is not None
            and self.budget_left_usd is not None
            and self.balance_usd < self.budget_left_usd
        )


def status_call(generation_id: str, wait_seconds: float) -> str:
    """The exact call that continues watching a generation."""
    return f"get_video_status(generation_id={json.dumps(generation_id)}, wait_seconds={wait_seconds:g})"


def outcome_result(outcome: Outcome, *, continue_wait_seconds: float, money: Money | None = None) -> CallToolResult:
    """The tool result for an outcome: structured content, a one-line summary, and a link when done.

    A failed generation is a tool error (`isError`) that still carries the full structured state and the id.
    """
    generation = outcome.generation
    status = generation.status
    gid = generation.id
    summary, next_step = _summary(outcome, continue_wait_seconds)
    if outcome.reattached:
        summary = f"Re-attached to the identical generation already made or running (no new charge). {summary}"
    money = money or Money()
    cost = generation.cost_usd
    summary += money.sentences(cost)
    if outcome.journal_error:
        summary += f" {outcome.journal_error}. Keep this generation id meanwhile."
    result = VideoResult(
        generation_id=gid,
        status=status.value,
        done=status.is_final,
        video_url=generation.video_url,
        error=generation.error,
        raw_status=generation.raw_status,
        elapsed_seconds=_rounded(outcome.elapsed_seconds),
        estimated_seconds_remaining=_rounded(outcome.remaining_seconds),
        usage=generation.usage,
        cost_usd=_cents(cost),
        budget_left_usd=_cents(money.budget_left_usd),
        balance_usd=_cents(money.balance_usd) if money.low_balance else None,
        reattached=outcome.reattached,
        local_path=str(outcome.saved.path) if outcome.saved else None,
        file_size_bytes=outcome.saved.size if outcome.saved else None,
        save_error=outcome.save_error,
        journal_error=outcome.journal_error,
        prompt=outcome.prompt,
        model=outcome.model,
        next_step=next_step,
    )
    content: list[ContentBlock] = [TextContent(type="text", text=summary)]
    if generation.video_url:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=generation.video_url,
                name=f"pixverse-{gid.split(':', 1)[0]}.mp4",
                mime_type=generation.content_type or "video/mp4",
                description="The generated video (temporary provider storage).",
            )
        )
    return CallToolResult(
        content=content,
        structured_content=result.model_dump(mode="json"),
        is_error=status is GenerationStatus.FAILED,
    )


def _summary(outcome: Outcome, continue_wait_seconds: float) -> tuple[str, str]:
    """The one-line summary of an outcome, and what to do next."""
    generation = outcome.generation
    gid = generation.id
    if generation.status is GenerationStatus.COMPLETED:
        next_step = "Done: give the user video_url (temporary storage: download it if it must be kept)."
        summary = f"Video ready: {generation.video_url} (generation {gid})."
        if outcome.saved is not None:
            next_step = f"Done: the video is saved at {outcome.saved.path}; video_url is temporary storage."
            summary += f" Saved to {outcome.saved.path} ({outcome.saved.size} bytes)."
        elif outcome.save_error:
            summary += f" Saving it failed: {outcome.save_error}"
        return summary, next_step
    if generation.status is GenerationStatus.FAILED:
        next_step = "The generation failed; adjust the prompt or options and create a new one if the user wants."
        return f"Generation {gid} failed: {generation.error}", next_step
    remaining = outcome.remaining_seconds
    left = f", about {max(1, round(remaining))} s left" if remaining else ""
    next_step = f"Still running. Continue with {status_call(gid, continue_wait_seconds)}."
    return f"Generation {gid} is {generation.status.value}{left}. {next_step}", next_step


def problem_result(error: PixVerseError, *, continue_wait_seconds: float, money: Money | None = None) -> CallToolResult:
    """A video tool's error (`isError`), in the same structured shape as its other results.

    The generation id is kept whenever one exists; `done` says whether asking again about it can help.
    """
    message = str(error)
    generation_id = error.generation_id if isinstance(error, GenerationError) else None
    status: ResultStatus = "not_created"
    done = True
    if isinstance(error, GenerationLookupError):
        status = "unknown"
        done = error.not_found
        if error.not_found:
            next_step = "Check the generation_id (list_videos shows the ones this server started)."
        else:
            next_step = (
                f"The generation may still be running: check it later with "
                f"{status_call(error.generation_id, continue_wait_seconds)}."
            )
    elif isinstance(error, CreatePendingError):
        status, done = "unknown", False
        next_step = (
            "Call generate_video_blocking with the same arguments again in a few seconds: it re-attaches to that "
            "create (one payment)."
        )
    elif isinstance(error, CreateOutcomeUnknownError):
        status, done = "unknown", False
        next_step = (
            "Do not create it again with create_video or force_new. In a minute or two, call "
            "generate_video_blocking with the same arguments: it re-attaches to the video if the provider received "
            "the lost create (one payment), or creates it if the provider never did."
        )
    elif isinstance(error, MissingAPIKeyError):
        next_step = "Nothing was created. Set AIMLAPI_API_KEY for this server (or run it with --sandbox)."
    elif isinstance(error, SpendingCapError):
        next_step = "Nothing was created or charged. Tell the user the daily spending cap is reached."
    elif isinstance(error, InvalidArgumentError):
        next_step = "Nothing was created. Fix the argument the error names, then try again."
    elif error.transient:
        next_step = "Nothing was created. Try again in a minute."
    else:
        next_step = "Nothing was created. Fix what the error says, then try again."
    if generation_id is not None and generation_id not in message:
        message = f"{message} (generation {generation_id})"
    result = VideoResult(
        generation_id=generation_id,
        status=status,
        done=done,
        error=message,
        budget_left_usd=_cents(money.budget_left_usd if money else None),
        next_step=next_step,
    )
    return CallToolResult(
        content=[TextContent(type="text", text=f"{message} {next_step}")],
        structured_content=result.model_dump(mode="json"),
        is_error=True,
    )


DECLINED: Final = "The user declined: nothing was created or charged. Do not create it again unless the user asks."


def not_created_result(next_step: str, *, prompt: str | None = None) -> CallToolResult:
    """Nothing was created, and that is an answer, not an error (the user declined, or gave no answer in time)."""
    result = VideoResult(generation_id=None, status="not_created", done=True, prompt=prompt, next_step=next_step)
    return CallToolResult(
        content=[TextContent(type="text", text=f"Not created: {next_step}")],
        structured_content=result.model_dump(mode="json"),
    )


def refusal_result(message: str) -> CallToolResult:
    """A call refused before anything ran (invalid arguments): an error with no structured content."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def _cents(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def safe_result(result: CallToolResult) -> CallToolResult:
    """`result` as it can always be sent: no lone surrogate anywhere (they make JSON serialisation raise in the
    transport, taking every concurrent call down with it) and under `MAX_RESULT_BYTES`."""
    try:
        size = len(result.model_dump_json(by_alias=True, exclude_none=True))
    except ValueError:  # pydantic refuses to serialise a lone surrogate
        result = _mapped(result, lambda text: clean_text(text))
        size = len(result.model_dump_json(by_alias=True, exclude_none=True))
    if size > MAX_RESULT_BYTES:
        result = _mapped(result, lambda text: text if len(text) <= _LONG_TEXT else text[:_LONG_TEXT] + " [cut]")
    return result


def _mapped(result: CallToolResult, change: Any) -> CallToolResult:
    """`result` with `change` applied to every text in it but image data (which is base64, and bounded)."""

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            return value if key == "data" else change(value)
        if isinstance(value, dict):
            return {name: walk(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return CallToolResult.model_validate(walk(result.model_dump(by_alias=True, exclude_none=True)))


class VideoList(BaseModel):
    """The journal's newest generations (the `list_videos` tool's `outputSchema`)."""

    videos: list[JournalVideo]
    uncertain_creates: list[UncertainCreate] = Field(
        default_factory=list,
        description="Creates sent without an answer, and how each stands (being settled, or never received).",
    )
    next_step: str


def journal_document(entry: JournalEntry, history: list[tuple[float, str]]) -> str:
    """The `pixverse://generations/{id}` resource: the entry plus every status change we saw, as JSON."""
    document = journal_video(entry).model_dump(mode="json")
    document["status_history"] = [{"at": iso(at), "status": status} for at, status in history]
    return json.dumps(document, indent=2)


def list_result(
    entries: list[JournalEntry], pending: list[PendingCreate], *, continue_wait_seconds: float
) -> CallToolResult:
    """The list_videos result: structured list plus a one-line summary."""
    videos = [journal_video(entry) for entry in entries]
    uncertain = [uncertain_create(create) for create in pending]
    running = [video.generation_id for video in videos if not video.status.is_final]
    if running:
        next_step = f"For a video still running, call {status_call(running[0], continue_wait_seconds)}."
    else:
        next_step = "Every listed video is finished."
    if any(create.state == "settling" for create in uncertain):
        next_step += (
            " Some creates lost their answer and are being settled (uncertain_creates): calling again with the same "
            "arguments re-attaches to them if the provider received them, or creates them if it never did."
        )
    if any(create.state == "outcome_unknown" for create in uncertain):
        next_step += (
            " Some creates of an older version got no answer (outcome_unknown): only the AI/ML API usage page can "
            "tell whether they were charged."
        )
    counts = ", ".join(
        f"{sum(video.status is status for video in videos)} {status.value}"
        for status in GenerationStatus
        if any(video.status is status for video in videos)
    )
    summary = f"{len(videos)} video(s) in the journal" + (f": {counts}." if counts else ".")
    listing = VideoList(videos=videos, uncertain_creates=uncertain, next_step=next_step)
    return CallToolResult(
        content=[TextContent(type="text", text=f"{summary} {next_step}")],
        structured_content=listing.model_dump(mode="json"),
    )


class PreviewResult(BaseModel):
    """A keyframe contact sheet (the `preview_video` tool's `outputSchema`); the image itself is the PNG content."""

    generation_id: str | None = None
    path: str | None = None
    frames: int = Field(description="How many keyframes the sheet shows, left to right, top to bottom.")
    timestamps: list[float] = Field(description="Seconds into the video of each frame.")
    width: int
    height: int
    png_bytes: int


def preview_image(sheet: ContactSheet) -> ImageContent:
    """The contact sheet as MCP image content."""
    return ImageContent(type="image", data=base64.b64encode(sheet.png).decode("ascii"), mime_type="image/png")


def preview_result(sheet: ContactSheet, *, generation_id: str | None, path: str | None) -> CallToolResult:
    """The preview_video result: the image, a one-line summary, and the sheet's facts."""
    source = f"generation {generation_id}" if generation_id else str(path)
    summary = (
        f"Contact sheet of {sheet.frames} keyframes from {source} (at {', '.join(f'{t:g}' for t in sheet.timestamps)}"
        " s), left to right, top to bottom. Check it against the prompt before telling the user it is done."
    )
    result = PreviewResult(
        generation_id=generation_id,
        path=path,
        frames=sheet.frames,
        timestamps=list(sheet.timestamps),
        width=sheet.width,
        height=sheet.height,
        png_bytes=len(sheet.png),
    )
    return CallToolResult(
        content=[TextContent(type="text", text=summary), preview_image(sheet)],
        structured_content=result.model_dump(mode="json"),
    )


class DaySpend(BaseModel):
    """What one UTC day cost."""

    day: str = Field(description="The UTC date (YYYY-MM-DD).")
    spent_usd: float
    videos: int


class AccountResult(BaseModel):
    """The account and the spending cap (the `account_status` tool's `outputSchema`)."""

    balance_usd: float | None = Field(description="The account's balance at the AI/ML API (null when unknown).")
    spent_today_usd: float = Field(description="What this server spent today (UTC), creates being settled included.")
    budget_usd: float | None = Field(description="The daily spending cap (null: none).")
    budget_left_usd: float | None = Field(description="What the cap leaves for today (null: no cap).")
    spend_by_day: list[DaySpend] = Field(description="The last week's spend, newest day first (days with videos).")
    next_step: str


def account_result(account: AccountStatus) -> CallToolResult:
    """The account_status result: the figures, and a line saying what limits the next video."""
    parts = [f"Spent today: {dollars(account.spent_today_usd)}."]
    if account.budget_usd is not None:
        parts.append(f"Daily cap: {dollars(account.budget_usd)} ({dollars(account.budget_left_usd or 0)} left).")
    if account.balance_usd is not None:
        parts.append(f"Balance: {dollars(account.balance_usd)}.")
    low = Money(account.budget_left_usd, account.balance_usd).low_balance
    if low:
        next_step = "The balance is below what the cap still allows today: the user should top it up."
    elif account.budget_left_usd is not None and account.budget_left_usd <= 0:
        next_step = "Today's cap is reached: no video can be created before midnight UTC."
    else:
        next_step = "Nothing limits the next video."
    result = AccountResult(
        balance_usd=_cents(account.balance_usd),
        spent_today_usd=round(account.spent_today_usd, 4),
        budget_usd=account.budget_usd,
        budget_left_usd=_cents(account.budget_left_usd),
        spend_by_day=[
            DaySpend(day=day, spent_usd=round(spent, 4), videos=count) for day, spent, count in account.spend_by_day
        ],
        next_step=next_step,
    )
    return CallToolResult(
        content=[TextContent(type="text", text=f"{' '.join(parts)} {next_step}")],
        structured_content=result.model_dump(mode="json"),
    )
