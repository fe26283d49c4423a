"""Produce `pixverse_mcp/assets/sandbox.mp4`, the small playable clip the sandbox serves as every rendered video.

Run once, by hand, when the clip must change (the result is checked in; nothing runs this at build or test time):

    pip install av numpy
    python examples/make_sandbox_video.py

12 frames at 8 fps (1.5 s), 160x90, H.264 in yuv420p (what every player and browser decodes), a keyframe every
4 frames, and `+faststart` so the index comes first. Each frame has its own background hue and a white square
that crosses the frame, so previews taken at different times look different.
"""

from __future__ import annotations

import colorsys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT = 160, 90
FRAMES = 12
FPS = 8
# A keyframe every half second, so previews seeking to different times land on different keyframes.
KEYFRAME_INTERVAL = 4
SQUARE = 30
OUTPUT = Path(__file__).resolve().parent.parent / "pixverse_mcp" / "assets" / "sandbox.mp4"


def frame_pixels(index: int) -> np.ndarray:
    """Frame `index` as RGB: a hue of its own, and a white square further to the right each frame."""
    red, green, blue = colorsys.hsv_to_rgb(index / FRAMES, 0.8, 0.9)
    pixels = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[:] = (round(red * 255), round(green * 255), round(blue * 255))
    left = round(index * (WIDTH - SQUARE) / (FRAMES - 1))
    top = (HEIGHT - SQUARE) // 2
    pixels[top : top + SQUARE, left : left + SQUARE] = 255
    return pixels


def main() -> None:
    """Encode the clip and write it over the checked-in asset."""
    with av.open(str(OUTPUT), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.codec_context.gop_size = KEYFRAME_INTERVAL
        # One thread and fixed options keep the output byte-for-byte reproducible.
        stream.options = {"crf": "28", "preset": "veryslow", "threads": "1", "keyint_min": str(KEYFRAME_INTERVAL)}
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(frame_pixels(index), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
