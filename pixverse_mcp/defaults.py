"""The numbers the library and the server start from, each named once with its reason.

The client (`PixVerseClient`) uses them as its defaults; the settings (`config.Settings`) start from them and let the
environment override. Nothing here imports anything, so reading a default costs nothing at start-up.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://api.aimlapi.com"
# The provider's recommended path for every video model; the vendor path still works and is one setting away.
ENDPOINT_PATHS: Final[dict[str, str]] = {
    "universal": "/v2/video/generations",
    "vendor": "/v2/generate/video/pixverse/generation",
}

# Connect fast or fail; a status answer or a create answer comes within seconds when the API is healthy.
CONNECT_TIMEOUT_SECONDS: Final = 10.0
READ_TIMEOUT_SECONDS: Final = 30.0
# Videos are a few MB (the provider's sample 5 s clip is 6.3 MB); anything near this cap is not a video of ours.
MAX_DOWNLOAD_MB: Final = 500.0

# Claude Desktop and the TypeScript SDK cut a request at 60 s by default; a blocking call must answer before that.
WAIT_BUDGET_SECONDS: Final = 50.0
# The most a single call may ask to wait, for hosts that allow long calls.
MAX_WAIT_SECONDS: Final = 600.0
# A retried blocking call this soon after an identical one re-attaches to it instead of paying again.
REATTACH_WINDOW_SECONDS: Final = 600.0
# A create whose answer was lost is looked for in the provider's request log this long (its rows arrive through an
# analytics pipeline, after a delay); not found by then, it was never received.
SETTLE_SECONDS: Final = 600.0
# Images an agent names (a first or last frame) are sent inline as data URIs: this caps what one may weigh. Videos
# and sounds for lip-sync are capped in `inputs` (a data URI of them must still fit in one request).
MAX_IMAGE_MB: Final = 10.0
MAX_VIDEO_INPUT_MB: Final = 50.0
MAX_AUDIO_INPUT_MB: Final = 20.0

# HTTP transports listen on loopback unless told otherwise (beyond loopback needs a token).
HTTP_HOST: Final = "127.0.0.1"
HTTP_PORT: Final = 8000

# What a video is assumed to cost before one of its size has been charged (the spending cap's first estimate): the
# provider's usage figure for a 5 s 720p clip, 840,000 credits. Later estimates are the last observed price.
COST_ESTIMATE_USD: Final = 0.42
# A replica polling a generation holds a lease this long (renewed as it polls); if it dies, another takes over after.
LEASE_SECONDS: Final = 30.0
# The provider's CDN, where its finished videos live: what the inline player may load media from by default.
MEDIA_ORIGINS: Final = ("https://cdn.aimlapi.com",)
# A protocol task, and the result it holds, is kept this long after it was created (a day: a client may come back).
TASK_TTL_SECONDS: Final = 86_400.0
