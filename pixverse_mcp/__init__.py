"""pixverse-mcp: an MCP server (and async client) for PixVerse v5 text-to-video through the AI/ML API.

The public names are imported on first use (PEP 562), so `pixverse-mcp --help` and the server's start-up do not
pay for what they do not touch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PixVerseClient": "pixverse_mcp.client",
    "WaitUpdate": "pixverse_mcp.client",
    "DownloadedVideo": "pixverse_mcp.client",
    "RetryPolicy": "pixverse_mcp._retry",
    "PollingPolicy": "pixverse_mcp.polling",
    **dict.fromkeys(
        [
            "APIConnectionError",
            "APIStatusError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "CreateOutcomeUnknownError",
            "DownloadError",
            "GenerationError",
            "GenerationFailedError",
            "GenerationLookupError",
            "InsufficientCreditsError",
            "InvalidArgumentError",
            "MissingAPIKeyError",
            "NotFoundError",
            "PixVerseError",
            "PreviewError",
            "PreviewUnavailableError",
            "RateLimitError",
            "UnexpectedResponseError",
            "UpstreamServerError",
            "WaitTimeoutError",
        ],
        "pixverse_mcp.errors",
    ),
    **dict.fromkeys(
        ["AspectRatio", "Duration", "Generation", "GenerationStatus", "Resolution", "Style", "VideoRequest"],
        "pixverse_mcp.models",
    ),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pixverse_mcp' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from pixverse_mcp._retry import RetryPolicy
    from pixverse_mcp.client import DownloadedVideo, PixVerseClient, WaitUpdate
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
        GenerationLookupError,
        InsufficientCreditsError,
        InvalidArgumentError,
        MissingAPIKeyError,
        NotFoundError,
        PixVerseError,
        PreviewError,
        PreviewUnavailableError,
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
    from pixverse_mcp.polling import PollingPolicy

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AspectRatio",
    "AuthenticationError",
    "BadRequestError",
    "CreateOutcomeUnknownError",
    "DownloadError",
    "DownloadedVideo",
    "Duration",
    "Generation",
    "GenerationError",
    "GenerationFailedError",
    "GenerationLookupError",
    "GenerationStatus",
    "InsufficientCreditsError",
    "InvalidArgumentError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PixVerseClient",
    "PixVerseError",
    "PollingPolicy",
    "PreviewError",
    "PreviewUnavailableError",
    "RateLimitError",
    "Resolution",
    "RetryPolicy",
    "Style",
    "UnexpectedResponseError",
    "UpstreamServerError",
    "VideoRequest",
    "WaitTimeoutError",
    "WaitUpdate",
    "__version__",
]
