"""Keyframe previews: a small contact sheet of frames from a video, so a multimodal agent can look at what it made.

Needs the optional extra `aimlapi-pixverse-mcp[preview]` (PyAV to decode, Pillow to compose); both are imported only
when a preview is asked for, so the server starts as fast without them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pixverse_mcp.errors import PreviewError, PreviewUnavailableError

INSTALL_HINT: Final = "Previews need the optional extra: pip install 'aimlapi-pixverse-mcp[preview]' (PyAV and Pillow)."
# Hosts reject tool results over ~1 MB and base64 adds a third: keep the PNG well under that.
MAX_PREVIEW_BYTES: Final = 600_000
MAX_SHEET_WIDTH: Final = 1024
MAX_FRAMES: Final = 16
# Frames larger than 4K are not decoded: one 8192x4320 frame takes hundreds of MB in the decoder, and no video of
# this model is bigger than 1080p. A file announcing such frames is refused before anything is decoded.
MAX_FRAME_PIXELS: Final = 3840 * 2160


@dataclass(frozen=True)
class ContactSheet:
    """A PNG of `frames` keyframes in a grid."""

    png: bytes
    width: int
    height: int
    frames: int
    timestamps: tuple[float, ...]
    """Seconds into the video of each frame, in grid order."""


def preview_available() -> bool:
    """Whether PyAV and Pillow can be imported."""
    try:
        import av  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def contact_sheet(video: Path, *, frames: int = 4) -> ContactSheet:
    """Decode `frames` evenly spaced frames of `video` and compose them into one PNG (CPU-bound: run in a thread)."""
    try:
        import av
        from PIL import Image
    except ImportError as exc:
        raise PreviewUnavailableError(INSTALL_HINT) from exc
    frames = max(1, min(frames, MAX_FRAMES))
    try:
        with av.open(str(video)) as container:
            images, timestamps = _sample_frames(container, frames)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PreviewError(f"Could not decode {video.name} as a video: {exc}") from exc
    if not images:
        raise PreviewError(f"{video.name} has no video frames")
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    tile_width = min(images[0].width, MAX_SHEET_WIDTH // columns)
    while True:
        tile_height = max(1, round(images[0].height * tile_width / images[0].width))
        sheet = Image.new("RGB", (tile_width * columns, tile_height * rows), "black")
        for index, image in enumerate(images):
            tile = image.resize((tile_width, tile_height), Image.Resampling.LANCZOS)
            sheet.paste(tile, ((index % columns) * tile_width, (index // columns) * tile_height))
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG", optimize=True)
        png = buffer.getvalue()
        if len(png) <= MAX_PREVIEW_BYTES or tile_width <= 32:
            return ContactSheet(png, sheet.width, sheet.height, len(images), tuple(timestamps))
        tile_width = int(tile_width * 0.75)


def _sample_frames(container: Any, count: int) -> tuple[list[Any], list[float]]:
    """Decode once, front to back, keeping only the first frame at or after each of `count` evenly spaced times
    (the middle of each equal slice), so memory holds `count` images whatever the video's length."""
    if not container.streams.video:
        return [], []
    stream = container.streams.video[0]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width * height > MAX_FRAME_PIXELS:
        raise PreviewError(
            f"the video's frames are {width}x{height}, larger than the 3840x2160 a preview decodes; not decoded"
        )
    duration = _duration_seconds(container, stream)
    targets = [(index + 0.5) * duration / count for index in range(count)] if duration else [0.0] * count
    images: list[Any] = []
    timestamps: list[float] = []
    last: Any = None
    for frame in container.decode(stream):
        moment = float(frame.time or 0.0)
        last = frame
        while len(images) < count and moment >= targets[len(images)]:
            images.append(frame.to_image())
            timestamps.append(round(moment, 3))
        if len(images) == count:
            break
    if not images and last is not None:  # no duration known and no frame at 0: show the last one we saw
        images.append(last.to_image())
        timestamps.append(round(float(last.time or 0.0), 3))
    return images, timestamps


def _duration_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # microseconds (av.time_base)
    return None
