"""What an agent gets back: one structured shape for every tool, a one-line summary, and the next step.

Every result, error or not, names the generation id once one exists, so a paid video can always be found again.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from mcp_types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from pixverse_mcp.journal import JournalEntry
from pixverse_mcp.models import GenerationStatus
from pixverse_mcp.preview import ContactSheet
from pixverse_mcp.service import Outcome


class VideoResult(BaseModel):
    """The state of one generation as a tool reports it (the tools' `outputSchema`)."""

    generation_id: str = Field(description="Opaque id of the generation; pass it to get_video_status.")
    status: GenerationStatus = Field(
        description="queued or generating: still running; completed: video_url is set; failed: error is set; "
        "unknown: the provider reported a status we do not know (treated as still running)."
    )
    done: bool = Field(description="True when the status is final (completed or failed).")
    video_url: str | None = Field(
        default=None, description="Where to download the video (temporary provider storage: fetch it promptly)."
    )
    error: str | None = Field(default=None, description="Why the generation failed, when it did.")
    raw_status: str | None = Field(default=None, description="The status exactly as the provider reported it.")
    elapsed_seconds: float | None = Field(default=None, description="How long this call waited, in seconds.")
    estimated_seconds_remaining: float | None = Field(
        default=None, description="Rough time left by the usual figures, while still running."
    )
    usage: dict[str, Any] | None = Field(
        default=None, description="What the provider charged for the generation (meta.usage), when known."
    )
    reattached: bool = Field(
        default=False, description="True when an identical generation already running was re-used (no new charge)."
    )
    local_path: str | None = Field(default=None, description="Where the video was saved on this machine, if it was.")
    file_size_bytes: int | None = Field(default=None, description="Size of the saved file.")
    save_error: str | None = Field(default=None, description="Why saving the video failed, if it did.")
    next_step: str = Field(description="What to do next, in words an agent can follow.")


def status_call(generation_id: str, wait_seconds: float) -> str:
    """The exact call that continues watching a generation."""
    return f"get_video_status(generation_id={json.dumps(generation_id)}, wait_seconds={wait_seconds:g})"


def outcome_result(outcome: Outcome, *, continue_wait_seconds: float) -> CallToolResult:
    """The tool result for an outcome: structured content, a one-line summary, and a link when done.

    A failed generation is a tool error (`isError`) that still carries the full structured state and the id.
    """
    generation = outcome.generation
    status = generation.status
    gid = generation.id
    if status is GenerationStatus.COMPLETED:
        next_step = "Done: give the user video_url (temporary storage: download it if it must be kept)."
        summary = f"Video ready: {generation.video_url} (generation {gid})."
        if outcome.saved is not None:
            next_step = f"Done: the video is saved at {outcome.saved.path}; video_url is temporary storage."
            summary += f" Saved to {outcome.saved.path} ({outcome.saved.size} bytes)."
        elif outcome.save_error:
            summary += f" Saving it failed: {outcome.save_error}"
    elif status is GenerationStatus.FAILED:
        next_step = "The generation failed; adjust the prompt or options and create a new one if the user wants."
        summary = f"Generation {gid} failed: {generation.error}"
    else:
        remaining = outcome.remaining_seconds
        left = f", about {max(1, round(remaining))} s left" if remaining else ""
        next_step = f"Still running. Continue with {status_call(gid, continue_wait_seconds)}."
        summary = f"Generation {gid} is {status.value}{left}. {next_step}"
    if outcome.reattached:
        summary = f"Re-attached to the identical generation already running (no new charge). {summary}"
    result = VideoResult(
        generation_id=gid,
        status=status,
        done=status.is_final,
        video_url=generation.video_url,
        error=generation.error,
        raw_status=generation.raw_status,
        elapsed_seconds=_rounded(outcome.elapsed_seconds),
        estimated_seconds_remaining=_rounded(outcome.remaining_seconds),
        usage=generation.usage,
        reattached=outcome.reattached,
        local_path=str(outcome.saved.path) if outcome.saved else None,
        file_size_bytes=outcome.saved.size if outcome.saved else None,
        save_error=outcome.save_error,
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


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def error_result(message: str, *, generation_id: str | None = None) -> CallToolResult:
    """A tool error (`isError`) an agent can act on; it carries the generation id when one exists."""
    text = message if generation_id is None or generation_id in message else f"{message} (generation {generation_id})"
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"generation_id": generation_id, "error": text} if generation_id else None,
        is_error=True,
    )


def progress_message(status: GenerationStatus | None, elapsed: float, expected: float) -> str:
    """A line a person can read: "generating, 24 s elapsed, about 15 s left"."""
    label = status.value if status is not None else "waiting for the first status"
    if status is not None and status.is_final:
        return f"{label} after {elapsed:.0f} s"
    if elapsed <= expected:
        return f"{label}, {elapsed:.0f} s elapsed, about {max(1, round(expected - elapsed))} s left"
    return f"{label}, {elapsed:.0f} s elapsed, taking longer than the usual {expected:.0f} s"


class JournalVideo(BaseModel):
    """One generation as the journal remembers it."""

    generation_id: str
    status: GenerationStatus
    created_at: str = Field(description="When we received the id (ISO 8601, UTC).")
    updated_at: str = Field(description="When we last heard of it (ISO 8601, UTC).")
    prompt: str | None = None
    options: dict[str, Any] | None = Field(default=None, description="The other request fields (resolution, ...).")
    video_url: str | None = None
    error: str | None = None
    usage: dict[str, Any] | None = None
    local_path: str | None = None


class VideoList(BaseModel):
    """The journal's newest generations (the `list_videos` tool's `outputSchema`)."""

    videos: list[JournalVideo]
    next_step: str


def journal_video(entry: JournalEntry) -> JournalVideo:
    """An entry in the shape agents see."""
    request = dict(entry.request or {})
    prompt = request.pop("prompt", None)
    request.pop("model", None)
    return JournalVideo(
        generation_id=entry.generation_id,
        status=entry.status,
        created_at=_iso(entry.created_at),
        updated_at=_iso(entry.updated_at),
        prompt=prompt if isinstance(prompt, str) else None,
        options=request or None,
        video_url=entry.video_url,
        error=entry.error,
        usage=entry.usage,
        local_path=entry.local_path,
    )


def journal_document(entry: JournalEntry, history: list[tuple[float, str]]) -> str:
    """The `pixverse://generations/{id}` resource: the entry plus every status change we saw, as JSON."""
    document = journal_video(entry).model_dump(mode="json")
    document["status_history"] = [{"at": _iso(at), "status": status} for at, status in history]
    return json.dumps(document, indent=2)


def list_result(entries: list[JournalEntry], *, continue_wait_seconds: float) -> CallToolResult:
    """The list_videos result: structured list plus a one-line summary."""
    videos = [journal_video(entry) for entry in entries]
    pending = [video.generation_id for video in videos if not video.status.is_final]
    if pending:
        next_step = f"For a video still running, call {status_call(pending[0], continue_wait_seconds)}."
    else:
        next_step = "Every listed video is finished."
    counts = ", ".join(
        f"{sum(video.status is status for video in videos)} {status.value}"
        for status in GenerationStatus
        if any(video.status is status for video in videos)
    )
    summary = f"{len(videos)} video(s) in the journal" + (f": {counts}." if counts else ".")
    return CallToolResult(
        content=[TextContent(type="text", text=f"{summary} {next_step}")],
        structured_content=VideoList(videos=videos, next_step=next_step).model_dump(mode="json"),
    )


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")


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
