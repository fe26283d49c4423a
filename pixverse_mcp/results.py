"""What an agent gets back: one structured shape for every tool, a one-line summary, and the next step.

Every result, error or not, names the generation id once one exists, so a paid video can always be found again.
"""

from __future__ import annotations

from typing import Any

from mcp_types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel, Field

from pixverse_mcp.models import Generation, GenerationStatus


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
    next_step: str = Field(description="What to do next, in words an agent can follow.")


def status_call(generation_id: str, wait_seconds: float) -> str:
    """The exact call that continues watching a generation."""
    return f'get_video_status(generation_id="{generation_id}", wait_seconds={wait_seconds:g})'


def video_result(
    generation: Generation,
    *,
    continue_wait_seconds: float,
    elapsed_seconds: float | None = None,
    estimated_seconds_remaining: float | None = None,
    usage: dict[str, Any] | None = None,
) -> CallToolResult:
    """A successful tool result for `generation`: structured content, a one-line summary, and a link when done."""
    status = generation.status
    gid = generation.id
    if status is GenerationStatus.COMPLETED:
        next_step = "Done: give the user video_url (it is temporary storage; download it if it must be kept)."
        summary = f"Video ready: {generation.video_url} (generation {gid})."
    elif status is GenerationStatus.FAILED:
        next_step = "The generation failed; adjust the prompt or options and create a new one if the user wants."
        summary = f"Generation {gid} failed: {generation.error}"
    else:
        left = f", about {estimated_seconds_remaining:.0f} s left" if estimated_seconds_remaining else ""
        next_step = f"Still running. Continue with {status_call(gid, continue_wait_seconds)}."
        summary = f"Generation {gid} is {status.value}{left}. {next_step}"
    result = VideoResult(
        generation_id=gid,
        status=status,
        done=status.is_final,
        video_url=generation.video_url,
        error=generation.error,
        raw_status=generation.raw_status,
        elapsed_seconds=None if elapsed_seconds is None else round(elapsed_seconds, 1),
        estimated_seconds_remaining=None
        if estimated_seconds_remaining is None
        else round(estimated_seconds_remaining, 1),
        usage=usage if usage is not None else generation.usage,
        next_step=next_step,
    )
    content: list[Any] = [TextContent(type="text", text=summary)]
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
    if elapsed < expected:
        return f"{label}, {elapsed:.0f} s elapsed, about {expected - elapsed:.0f} s left"
    return f"{label}, {elapsed:.0f} s elapsed, taking longer than the usual {expected:.0f} s"
