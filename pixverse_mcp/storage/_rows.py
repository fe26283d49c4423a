"""Between rows and records, for both backends: values written are made storable, values read are read leniently
(one odd value in one row must never break a listing)."""

from __future__ import annotations

import json
import logging
from typing import Any

from pixverse_mcp.models import GenerationStatus
from pixverse_mcp.polling import ReadyTime
from pixverse_mcp.storage import IntentState, JournalEntry, PendingCreate, TaskRecord
from pixverse_mcp.text import clean_text

logger = logging.getLogger(__name__)


def text(value: str | None) -> str | None:
    """A text column's value: storable whatever it holds."""
    return clean_text(value) if value is not None else None


def dumps(value: Any) -> str | None:
    """A JSON column's value (ensure_ascii, the default, escapes what UTF-8 could not store)."""
    return json.dumps(value) if value is not None else None


def loads(stored: str | None) -> Any:
    """A JSON column read back; a value that does not parse is dropped (logged), never fatal."""
    if not stored:
        return None
    try:
        return json.loads(stored)
    except (ValueError, RecursionError):
        logger.warning("ignoring an unreadable JSON value in the journal")
        return None


def entry(row: Any) -> JournalEntry:
    """A `generations` row as an entry."""
    return JournalEntry(
        generation_id=str(row["id"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        request=_object(loads(row["request_json"])),
        status=_status(row["status"]),
        raw_status=_optional_str(row["raw_status"]),
        video_url=_optional_str(row["video_url"]),
        error=_optional_str(row["error"]),
        usage=_object(loads(row["usage_json"])),
        local_path=_optional_str(row["local_path"]),
        file_size=row["file_size"] if isinstance(row["file_size"], int) else None,
        cost_usd=_optional_float(row["cost_usd"]),
        completed_at=_optional_float(row["completed_at"]),
        model=_optional_str(row["model"]),
        cost_estimated=bool(row["cost_estimated"]),
    )


def ready_time(row: Any) -> ReadyTime:
    """A completed generation's time to ready: between the last look that saw it running (else its creation) and
    the first that saw it done."""
    created, completed = float(row["created_at"]), float(row["completed_at"])
    running = max(created, float(row["pending_until"] if row["pending_until"] is not None else created))
    model = row["model"]
    return ReadyTime(
        str(row["resolution"]),
        int(row["duration"]),
        (running + completed) / 2 - created,
        abs(completed - running),
        model if isinstance(model, str) else None,
    )


def pending(row: Any) -> PendingCreate:
    """A `create_intents` row (still without an id) as a pending create."""
    return PendingCreate(
        intent_id=str(row["id"]),
        created_at=float(row["created_at"]),
        request=_object(loads(row["request_json"])),
        state=_state(row["state"]),
        key=_optional_str(row["request_key"]),
        detail=_optional_str(row["detail"]),
        client_request_id=_optional_str(row["client_request_id"]),
        sender=_optional_str(row["sender"]),
        settle_until=_optional_float(row["settle_until"]),
        estimate_usd=_optional_float(row["estimate_usd"]),
    )


def task(row: Any) -> TaskRecord:
    """A `tasks` row as a task."""
    return TaskRecord(
        task_id=str(row["id"]),
        principal=str(row["principal"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        ttl_seconds=float(row["ttl_seconds"]),
        generation_id=_optional_str(row["generation_id"]),
        status=row["status"],
        status_message=_optional_str(row["status_message"]),
        result=_object(loads(row["result_json"])),
        arguments=_object(loads(row["arguments_json"])),
    )


def task_values(record: TaskRecord) -> tuple[Any, ...]:
    """A task's columns, in the order both backends insert them."""
    return (
        record.task_id,
        record.principal,
        record.created_at,
        record.updated_at,
        record.ttl_seconds,
        record.generation_id,
        record.status,
        text(record.status_message),
        dumps(record.result),
        dumps(record.arguments),
    )


_STATES: tuple[IntentState, ...] = ("sending", "settling", "created", "never_received", "unknown")


def _state(raw: object) -> IntentState:
    return raw if raw in _STATES else "unknown"


def _status(raw: object) -> GenerationStatus:
    try:
        return GenerationStatus(str(raw))
    except ValueError:
        return GenerationStatus.UNKNOWN


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
