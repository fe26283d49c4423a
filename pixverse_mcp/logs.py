"""Logging: to stderr only (stdout is the stdio transport's protocol channel), and never a secret.

`configure_logging` runs before the SDK's own set-up, which then leaves the root logger alone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replace every configured secret in a record's final message: a last line of defence for the API key."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


def configure_logging(level: str, *, secrets: Iterable[str] = ()) -> None:
    """Send every log line to stderr at `level`, with `secrets` redacted; keep chatty libraries quiet."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != "DEBUG":
        # httpx logs a line per request at INFO: one per poll. Keep it for DEBUG.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
