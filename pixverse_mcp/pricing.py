"""What the provider publishes about money, read leniently: its price list (`GET /v1/models?include=pricing`) and its
log of requests (`GET /v2/logs`).

Both are read the way answers are read everywhere here: what we understand is used, what we do not is skipped (an
unknown pricing `kind` gives no price, never a wrong one), and nothing here can raise on an odd value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeGuard

# Per-second prices are quoted `per` this many seconds; a variant in another unit (per video, per clip) is priced
# per generation.
_SECOND_UNITS: Final = frozenset({"second", "seconds", "sec", "s"})
_VIDEO_UNITS: Final = frozenset({"video", "generation", "clip", "request", "item"})


@dataclass(frozen=True)
class Price:
    """One variant's price: `amount` US dollars per `per` units (seconds, or whole videos)."""

    amount: float
    per: float
    per_second: bool

    def for_video(self, duration: int) -> float:
        """The price of one video lasting `duration` seconds."""
        return self.amount / self.per * (duration if self.per_second else 1)


@dataclass(frozen=True)
class PriceList:
    """The published prices of one model, by resolution (`None`: the one price for every resolution)."""

    model: str
    prices: dict[str | None, Price]
    etag: str | None = None

    def estimate(self, resolution: str | None, duration: int) -> float | None:
        """What a video of this size costs by the list, or None when it does not say."""
        price = self.prices.get(resolution) or self.prices.get(None)
        return price.for_video(duration) if price is not None else None


def price_list_from(payload: dict[str, Any], model: str, *, etag: str | None) -> PriceList | None:
    """The price list of `model` in a catalogue answer (`{"data": [{"id": ..., "pricing": {...}}]}`), or None when
    the answer does not list it or prices it in a way we do not read."""
    entries = payload.get("data")
    if isinstance(payload.get("object"), str) and isinstance(entries, dict):
        entries = [entries]  # GET /model/{id} wraps one model
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        aliases = entry.get("aliases")
        if entry.get("id") != model and not (isinstance(aliases, list) and model in aliases):
            continue
        prices = _prices(entry.get("pricing"))
        return PriceList(model, prices, etag) if prices else None
    return None


def _prices(pricing: object) -> dict[str | None, Price]:
    if not isinstance(pricing, dict) or pricing.get("currency", "USD") != "USD":
        return {}
    kind = pricing.get("kind")
    prices: dict[str | None, Price] = {}
    if kind == "variants":
        for variant in pricing.get("variants") or []:
            price = _price(variant)
            when = variant.get("when") if isinstance(variant, dict) else None
            if price is None or not isinstance(when, dict) or set(when) - {"resolution"}:
                continue
            resolution = when.get("resolution")
            prices[resolution if isinstance(resolution, str) else None] = price
    elif kind == "fixed":
        units = pricing.get("units") or []
        if isinstance(units, list) and len(units) == 1:
            price = _price(units[0])
            if price is not None:
                prices[None] = price
    return prices


def _price(item: object) -> Price | None:
    if not isinstance(item, dict):
        return None
    amount, per = item.get("price"), item.get("per", 1)
    unit = str(item.get("unit") or item.get("name") or "").lower()
    if not _positive(amount) or not _positive(per) or unit not in _SECOND_UNITS | _VIDEO_UNITS:
        return None
    return Price(float(amount), float(per), unit in _SECOND_UNITS)


@dataclass(frozen=True)
class RequestLogRow:
    """One request as the provider's log recorded it."""

    created: float | None
    succeeded: bool
    model: str | None
    cost_usd: float | None
    inference_id: str | None
    """For an asynchronous generation: its generation id."""
    client_request_id: str | None


@dataclass(frozen=True)
class RequestLogPage:
    """A page of the log, newest first, and whether another page follows."""

    rows: list[RequestLogRow]
    has_more: bool


def request_log_page_from(payload: dict[str, Any]) -> RequestLogPage:
    """The rows of a `/v2/logs` answer (rows that are not objects are skipped)."""
    rows = []
    for item in payload.get("data") or []:
        if not isinstance(item, dict):
            continue
        cost = item.get("cost")
        usd = cost.get("usd") if isinstance(cost, dict) else None
        rows.append(
            RequestLogRow(
                created=_epoch(item.get("created")),
                succeeded=item.get("status") == "succeeded",
                model=_text(item.get("model")),
                cost_usd=float(usd) if _number(usd) and math.isfinite(usd) and usd >= 0 else None,
                inference_id=_text(item.get("inference_id")),
                client_request_id=_text(item.get("client_request_id")),
            )
        )
    pagination = payload.get("pagination")
    has_more = isinstance(pagination, dict) and pagination.get("has_more") is True
    return RequestLogPage(rows, has_more)


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: object) -> TypeGuard[float]:
    return _number(value) and math.isfinite(value) and value > 0
