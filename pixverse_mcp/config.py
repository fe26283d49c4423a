"""Settings from the environment, read in one place (`load_settings`); the library client keeps its own fallback
to `AIMLAPI_API_KEY` / `AIMLAPI_BASE_URL` for use without a server.

Every setting is listed in the README's configuration table. Every number must be finite and in its range: a bad
value stops the server before it serves, naming the variable (the CLI exits 3). CLI flags override by
`Settings.model_copy(update=...)`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pixverse_mcp import defaults
from pixverse_mcp.errors import MissingAPIKeyError
from pixverse_mcp.text import is_well_formed_key


class SettingsError(ValueError):
    """A setting in the environment has a value we cannot use; the message names the variable."""


class Settings(BaseModel):
    """Everything configurable, with its default. The API key is a `SecretStr`: it never prints."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    api_key: SecretStr | None = None
    base_url: str = defaults.DEFAULT_BASE_URL
    endpoint: Literal["universal", "vendor"] = "universal"
    connect_timeout_seconds: float = Field(default=defaults.CONNECT_TIMEOUT_SECONDS, gt=0, le=600)
    read_timeout_seconds: float = Field(default=defaults.READ_TIMEOUT_SECONDS, gt=0, le=600)
    wait_budget_seconds: float = Field(default=defaults.WAIT_BUDGET_SECONDS, gt=0, le=86_400)
    max_wait_seconds: float = Field(default=defaults.MAX_WAIT_SECONDS, gt=0, le=86_400)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    poll_time_scale: float = Field(default=1.0, gt=0, le=1)
    """Shrinks the polling schedule, for the sandbox and tests whose generations take seconds, not a minute."""
    state_dir: Path = Field(default_factory=lambda: default_state_dir())
    output_dir: Path | None = None
    """Where finished videos are saved (None: the user's videos folder, `default_videos_dir()`)."""
    save: bool = True
    """Save every finished video (the provider's URLs are temporary); a call's `save_to_disk` decides for itself."""
    max_download_mb: float = Field(default=defaults.MAX_DOWNLOAD_MB, gt=0, le=100_000)
    input_dirs: tuple[Path, ...] = ()
    """Folders whose images, videos and sounds an agent may name by path (besides the client's roots and the
    videos folder)."""
    max_image_mb: float = Field(default=defaults.MAX_IMAGE_MB, gt=0, le=1_000)
    reattach_window_seconds: float = Field(default=defaults.REATTACH_WINDOW_SECONDS, ge=0, le=86_400)
    """A blocking call identical to one still in flight this recently re-attaches to it instead of paying again."""
    settle_seconds: float = Field(default=defaults.SETTLE_SECONDS, gt=0, le=86_400)
    """How long a create whose answer was lost is looked for in the provider's request log."""
    daily_budget_usd: float | None = Field(default=None, ge=0, le=1_000_000)
    """The most the server may spend per UTC day (creates refused beyond it); None: no cap."""
    cost_estimate_usd: float = Field(default=defaults.COST_ESTIMATE_USD, gt=0, le=1_000)
    """What a video is assumed to cost when neither an earlier one of its size nor the price list says."""
    confirm_paid: bool = False
    """Ask the user (elicitation) before each paid create, when the client can ask."""
    database_url: SecretStr | None = None
    """postgresql://... for storage shared by several replicas; None: the SQLite journal in state_dir."""
    journal_keep_days: float | None = Field(default=None, gt=0, le=36_500)
    """Drop finished generations older than this from the journal (None: keep everything)."""
    lease_seconds: float = Field(default=defaults.LEASE_SECONDS, gt=0, le=3_600)
    """How long a replica's claim to poll a generation lasts without renewal (takeover time if it dies)."""
    task_ttl_seconds: float = Field(default=defaults.TASK_TTL_SECONDS, gt=0, le=30 * 86_400)
    """How long a protocol task (and its result) is kept after it was created."""
    media_origins: tuple[str, ...] = defaults.MEDIA_ORIGINS
    """Where finished videos are served from: the inline player may load media from these (its CSP)."""
    auth_token: SecretStr | None = None
    """The bearer token every HTTP request must carry (HTTP transports only)."""
    request_state_keys: tuple[SecretStr, ...] = ()
    """Secrets (32+ characters each; the first seals) that protect the state of a multi-round call (a confirmation
    on the 2026-07-28 protocol): the same on every replica, so the answer may reach another one. Empty: a random
    key per process, which is right for one process."""
    allowed_hosts: tuple[str, ...] = ()
    """Host header values accepted over HTTP, beyond the loopback names (e.g. `mcp.example.com`, `10.0.0.5:*`)."""
    allowed_origins: tuple[str, ...] = ()
    """Origin header values accepted over HTTP, beyond the loopback origins (e.g. `https://app.example.com`)."""

    @field_validator("request_state_keys")
    @classmethod
    def _long_enough(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(key.get_secret_value()) < 32 for key in keys):
            raise ValueError("each key must be at least 32 characters (for example: openssl rand -hex 32)")
        return keys

    @field_validator("state_dir", "output_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("input_dirs")
    @classmethod
    def _expand_homes(cls, folders: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(folder.expanduser() for folder in folders)

    @property
    def secrets(self) -> list[str]:
        """Every secret value configured, for log redaction."""
        configured = (self.api_key, self.auth_token, self.database_url, *self.request_state_keys)
        return [secret.get_secret_value() for secret in configured if secret is not None]

    @property
    def journal_path(self) -> Path:
        """The journal database file."""
        return self.state_dir / "journal.sqlite3"

    @property
    def videos_dir(self) -> Path:
        """Where finished videos are saved."""
        return self.output_dir if self.output_dir is not None else default_videos_dir()

    @property
    def max_download_bytes(self) -> int:
        """The download size cap in bytes."""
        return int(self.max_download_mb * 1024 * 1024)

    @property
    def endpoint_path(self) -> str:
        """The path both the create POST and the status GET use."""
        return defaults.ENDPOINT_PATHS[self.endpoint]

    @property
    def api_key_error(self) -> MissingAPIKeyError | None:
        """Why the configured key cannot be used (none, or malformed), or None when it can."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            return MissingAPIKeyError()
        if not is_well_formed_key(self.api_key.get_secret_value().strip()):
            return MissingAPIKeyError(malformed=True)
        return None


# Environment variable -> Settings field. AIMLAPI_* are the provider's names; the rest are ours.
ENVIRONMENT_VARIABLES: Final[dict[str, str]] = {
    "AIMLAPI_API_KEY": "api_key",
    "AIMLAPI_BASE_URL": "base_url",
    "PIXVERSE_MCP_ENDPOINT": "endpoint",
    "PIXVERSE_MCP_CONNECT_TIMEOUT_SECONDS": "connect_timeout_seconds",
    "PIXVERSE_MCP_READ_TIMEOUT_SECONDS": "read_timeout_seconds",
    "PIXVERSE_MCP_WAIT_BUDGET_SECONDS": "wait_budget_seconds",
    "PIXVERSE_MCP_MAX_WAIT_SECONDS": "max_wait_seconds",
    "PIXVERSE_MCP_LOG_LEVEL": "log_level",
    "PIXVERSE_MCP_POLL_TIME_SCALE": "poll_time_scale",
    "PIXVERSE_MCP_STATE_DIR": "state_dir",
    "PIXVERSE_MCP_OUTPUT_DIR": "output_dir",
    "PIXVERSE_MCP_SAVE": "save",
    "PIXVERSE_MCP_MAX_DOWNLOAD_MB": "max_download_mb",
    "PIXVERSE_MCP_INPUT_DIRS": "input_dirs",
    "PIXVERSE_MCP_MAX_IMAGE_MB": "max_image_mb",
    "PIXVERSE_MCP_REATTACH_WINDOW_SECONDS": "reattach_window_seconds",
    "PIXVERSE_MCP_SETTLE_SECONDS": "settle_seconds",
    "PIXVERSE_MCP_DAILY_BUDGET_USD": "daily_budget_usd",
    "PIXVERSE_MCP_COST_ESTIMATE_USD": "cost_estimate_usd",
    "PIXVERSE_MCP_CONFIRM_PAID": "confirm_paid",
    "PIXVERSE_MCP_DATABASE_URL": "database_url",
    "PIXVERSE_MCP_JOURNAL_KEEP_DAYS": "journal_keep_days",
    "PIXVERSE_MCP_LEASE_SECONDS": "lease_seconds",
    "PIXVERSE_MCP_MEDIA_ORIGINS": "media_origins",
    "PIXVERSE_MCP_TASK_TTL_SECONDS": "task_ttl_seconds",
    "PIXVERSE_MCP_AUTH_TOKEN": "auth_token",
    "PIXVERSE_MCP_REQUEST_STATE_KEYS": "request_state_keys",
    "PIXVERSE_MCP_ALLOWED_HOSTS": "allowed_hosts",
    "PIXVERSE_MCP_ALLOWED_ORIGINS": "allowed_origins",
}

_COMMA_SEPARATED: Final = ("allowed_hosts", "allowed_origins", "media_origins", "request_state_keys")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment); blank values count as unset."""
    source = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for variable, field in ENVIRONMENT_VARIABLES.items():
        raw = source.get(variable, "").strip()
        if raw:
            values[field] = raw
    for field in _COMMA_SEPARATED:
        if isinstance(raw_list := values.get(field), str):
            values[field] = tuple(item.strip() for item in raw_list.split(",") if item.strip())
    if isinstance(folders := values.get("input_dirs"), str):  # a path list, like PATH
        values["input_dirs"] = tuple(item.strip() for item in folders.split(os.pathsep) if item.strip())
    if isinstance(base_url := values.get("base_url"), str):
        values["base_url"] = base_url.rstrip("/")
    if isinstance(log_level := values.get("log_level"), str):
        values["log_level"] = log_level.upper()
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        field_to_variable = {field: variable for variable, field in ENVIRONMENT_VARIABLES.items()}
        problems = "; ".join(
            f"{field_to_variable.get(str(error['loc'][0]), error['loc'][0])}: {error['msg']}" for error in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None


def default_videos_dir() -> Path:
    """Where this user's finished videos go by default: a `pixverse` folder in their videos folder (`~/Videos`,
    `$XDG_VIDEOS_DIR` when set, `~/Movies` on macOS)."""
    if sys.platform == "darwin":
        base = Path.home() / "Movies"
    else:
        base = Path(os.environ.get("XDG_VIDEOS_DIR") or Path.home() / "Videos")
    return base.expanduser() / "pixverse"


def default_state_dir() -> Path:
    """Where this user's persistent state lives (XDG on Linux, the platform's usual place elsewhere)."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "pixverse-mcp"
