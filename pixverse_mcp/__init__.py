"""pixverse-mcp: an MCP server (and async client) for PixVerse v5 text-to-video through the AI/ML API."""

from pixverse_mcp.client import PixVerseClient, WaitUpdate
from pixverse_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CreateOutcomeUnknownError,
    DownloadError,
    GenerationError,
    GenerationFailedError,
    InsufficientCreditsError,
    MissingAPIKeyError,
    NotFoundError,
    PixVerseError,
    RateLimitError,
    UnexpectedResponseError,
    UpstreamServerError,
    WaitTimeoutError,
)
from pixverse_mcp.models import (
    AspectRatio,
    Duration,
    Generation,
    GenerationStatus,
    Resolution,
    Style,
    VideoRequest,
)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AspectRatio",
    "AuthenticationError",
    "BadRequestError",
    "CreateOutcomeUnknownError",
    "DownloadError",
    "Duration",
    "Generation",
    "GenerationError",
    "GenerationFailedError",
    "GenerationStatus",
    "InsufficientCreditsError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PixVerseClient",
    "PixVerseError",
    "RateLimitError",
    "Resolution",
    "Style",
    "UnexpectedResponseError",
    "UpstreamServerError",
    "VideoRequest",
    "WaitTimeoutError",
    "WaitUpdate",
    "__version__",
]
