"""What a video costs before it is made, what the day's cap leaves, and what the account holds.

An estimate is, first to last: the newest cost the provider reported for the same model and size (what it really
charges), the provider's published price list for that model and size (cached with its ETag, refreshed daily), and
only then the documented default (`PIXVERSE_MCP_COST_ESTIMATE_USD`). The cap counts, per UTC day, every video that
did not fail (the provider never charges a failed one) at the cost its create's answer reported (or its estimate
when the answer said nothing readable), plus every create still without an answer, at its estimate, until settled.

Neither the last cost nor today's spend is cached in memory: several processes or replicas may share the journal,
and a cache right for all of them needs a change marker read per create, a query as cheap as the answers themselves
(each one index lookup: `generations_by_size`, and `generations_charged` for today's rows only, flat from 1k to 1M
videos in benchmark P6). The cap itself is checked again inside the claim's exclusive transaction, so it holds across
processes whatever an advisory read here said.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Final, Literal

import anyio

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.models import plausible_cost_usd
from pixverse_mcp.pricing import Price, PriceList
from pixverse_mcp.storage import Budget, CachedDocument, Storage, StorageError, utc_midnight

logger = logging.getLogger(__name__)

# The price list is re-read this often (with its ETag: usually a 304); one that could not be fetched is not asked
# for again before `_UNAVAILABLE_SECONDS`, so a catalogue that is down costs one short request per hour, not one per
# video.
PRICE_LIST_SECONDS: Final = 86_400.0
_UNAVAILABLE_SECONDS: Final = 3_600.0
_PRICE_LIST_TIMEOUT_SECONDS: Final = 5.0
# The balance is asked for at most this often (results quote it when a cap is set).
BALANCE_SECONDS: Final = 60.0
_BALANCE_TIMEOUT_SECONDS: Final = 5.0
SPEND_DAYS: Final = 7

EstimateSource = Literal["observed", "price_list", "default"]


@dataclass(frozen=True)
class Estimate:
    """What a video is expected to cost, and where that figure comes from."""

    usd: float
    source: EstimateSource


@dataclass(frozen=True)
class AccountStatus:
    """The account and the cap, as `account_status` reports them."""

    balance_usd: float | None
    spent_today_usd: float
    budget_usd: float | None
    budget_left_usd: float | None
    spend_by_day: list[tuple[str, float, int]]


class Spending:
    """Estimates, the cap and the balance for one server."""

    def __init__(
        self,
        client: PixVerseClient,
        storage: Storage,
        *,
        cap_usd: float | None,
        default_estimate_usd: float,
    ) -> None:
        self.client = client
        self.storage = storage
        self.cap_usd = cap_usd
        self.default_estimate_usd = default_estimate_usd
        self._unavailable: dict[str, float] = {}
        self._balance: tuple[float, float | None] | None = None
        self._price_lock = anyio.Lock()

    async def estimate(self, model: str, resolution: str, duration: int, *, within: float | None = None) -> Estimate:
        """What one video of this model and size is expected to cost (see the module docstring); a price list still
        to fetch is waited for at most `within` seconds (a call's budget is shared with its create and its wait)."""
        try:
            observed = await self.storage.last_cost(model, resolution, duration)
        except StorageError:
            observed = None
        observed = plausible_cost_usd(observed)
        if observed is not None:
            return Estimate(observed, "observed")
        prices = await self._price_list(model, within=within)
        listed = plausible_cost_usd(prices.estimate(resolution, duration) if prices is not None else None)
        if listed is not None:
            return Estimate(listed, "price_list")
        return Estimate(self.default_estimate_usd, "default")

    def budget(self, estimate: Estimate) -> Budget | None:
        """The cap a claim must respect for a create of this estimate (None without a cap)."""
        if self.cap_usd is None:
            return None
        return Budget(self.cap_usd, estimate.usd, utc_midnight(time.time()))

    async def spent_today(self) -> float | None:
        """What today (UTC) has cost so far, reservations included; None when the journal cannot say."""
        try:
            return await self.storage.spent_since(utc_midnight(time.time()))
        except StorageError:
            return None

    async def left_today(self) -> float | None:
        """What the spending cap leaves for the rest of the UTC day (None without a cap, or if unknown)."""
        if self.cap_usd is None:
            return None
        spent = await self.spent_today()
        return None if spent is None else max(0.0, self.cap_usd - spent)

    async def over_cap(self, estimate: Estimate) -> float | None:
        """Today's spend when a create of this estimate would pass the cap now (nothing to ask the user then),
        else None. Advisory: the claim checks again, atomically."""
        if self.cap_usd is None:
            return None
        spent = await self.spent_today()
        if spent is None or spent + estimate.usd <= self.cap_usd + 1e-9:
            return None
        return spent

    async def balance(self, *, within: float | None = None) -> float | None:
        """The account's balance in US dollars, asked at most every `BALANCE_SECONDS` (waiting at most `within`
        seconds for the answer); None when unknown."""
        now = anyio.current_time()
        if self._balance is not None and now - self._balance[0] < BALANCE_SECONDS:
            return self._balance[1]
        try:
            balance = await self.client.account.balance(timeout=_bounded(_BALANCE_TIMEOUT_SECONDS, within))
        except PixVerseError as exc:
            logger.info("balance unavailable: %s", exc)
            balance = None
        self._balance = (now, balance)
        return balance

    async def account(self, *, days: int = SPEND_DAYS) -> AccountStatus:
        """The balance, today's spend against the cap, and the spend per day of the last `days` days."""
        spent = await self.spent_today() or 0.0
        try:
            by_day = await self.storage.daily_spend(days=days)
        except StorageError:
            by_day = []
        left = None if self.cap_usd is None else max(0.0, self.cap_usd - spent)
        return AccountStatus(await self.balance(), spent, self.cap_usd, left, by_day)

    async def _price_list(self, model: str, *, within: float | None) -> PriceList | None:
        """The model's price list: kept in storage (shared by replicas), re-validated daily with its ETag; the one
        kept (or none) when fetching it takes longer than `within` seconds."""
        name = f"prices:{model}"
        try:
            kept = await self.storage.cached(name)
        except StorageError:
            kept = None
        listed = _price_list_of(model, kept)
        fresh = kept is not None and time.time() - kept.fetched_at < PRICE_LIST_SECONDS
        if fresh or anyio.current_time() < self._unavailable.get(model, -math.inf):
            return listed
        with anyio.move_on_after(_bounded(_PRICE_LIST_TIMEOUT_SECONDS, within)):
            return await self._fetch_price_list(model, name, kept, listed)
        return listed  # not within the call's time: estimated from what is kept, fetched again on a later call

    async def _fetch_price_list(
        self, model: str, name: str, kept: CachedDocument | None, listed: PriceList | None
    ) -> PriceList | None:
        async with self._price_lock:
            try:
                fetched = await self.client.account.price_list(
                    model, etag=kept.etag if kept else None, timeout=_PRICE_LIST_TIMEOUT_SECONDS
                )
            except PixVerseError as exc:
                logger.info("the price list of %s is unavailable (%s): estimating without it", model, exc)
                self._unavailable[model] = anyio.current_time() + _UNAVAILABLE_SECONDS
                return listed
            if fetched is None and kept is not None:  # 304: unchanged
                document = CachedDocument(kept.value, kept.etag, time.time())
            elif fetched is not None:
                listed = fetched
                document = CachedDocument(_prices_value(fetched), fetched.etag, time.time())
            else:
                return listed
            try:
                await self.storage.cache(name, document)
            except StorageError as exc:
                logger.warning("could not keep the price list: %s", exc)
        return listed


def _bounded(seconds: float, within: float | None) -> float:
    return seconds if within is None else max(0.0, min(seconds, within))


def _prices_value(prices: PriceList) -> dict[str, list[float | bool]]:
    return {
        resolution or "*": [price.amount, price.per, price.per_second] for resolution, price in prices.prices.items()
    }


def _price_list_of(model: str, kept: CachedDocument | None) -> PriceList | None:
    """A kept price list read back (None for anything odd: it is only an estimate's source)."""
    if kept is None or not isinstance(kept.value, dict):
        return None
    prices: dict[str | None, Price] = {}
    for resolution, value in kept.value.items():
        if isinstance(value, list) and len(value) == 3:
            amount, per, per_second = value
            if _positive(amount) and _positive(per) and isinstance(per_second, bool):  # else not a price
                prices[None if resolution == "*" else resolution] = Price(float(amount), float(per), bool(per_second))
    return PriceList(model, prices, kept.etag) if prices else None


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
