"""Rotation: the order in which a property's offers are shown, in its three modes.

  priority  priority-weighted random order (Efraimidis-Spirakis): a priority-10 offer comes
            first ten times as often as a priority-1 offer beside it.
  even      uniform random order.
  auto      Thompson sampling on revenue per impression (RPM), learned from the property's
            rollups, with Mike's priority as the prior and a floor share of first positions for
            every offer so that a loser can still prove itself later.

The `auto` model. An impression earns CTR x (conversions per click) x (payout per conversion):
  - CTR ~ Beta, from impressions and clicks, which are known at once;
  - conversions per click ~ Gamma (the conjugate of Poisson counts), from conversions and
    *effective* clicks. CPL conversions arrive minutes to days after the click and are counted on
    the click's day, so a day's clicks count only for the share of their conversions that can
    have arrived by now: effective clicks = sum over days of clicks x P(delay <= age), P being the
    empirical CDF of the click-to-conversion delays observed. Without it a young offer looks
    worse than it is, precisely while it is being judged;
  - payout per conversion: the offer's observed mean, shrunk to its stated payout.
The prior: every offer starts from the property's pooled revenue per click scaled by its
priority relative to the others (priority 8 among offers averaging 4 is expected to earn twice
the average), worth PRIOR_CONVERSIONS conversions of evidence: enough to order offers
sensibly on day one, little enough that a few days of data overrule it.

The learned state (`build_state`) is a pure function of the aggregates, the delay samples and the
time; it is rebuilt in the background at most every POPUP_ROTATION_REFRESH_S. Per request,
`order_offers` only draws from it: no database, a few microseconds per offer. The same draw
function serves one request or, for the simulation, thousands of impressions at once.
"""
import random
import threading
from dataclasses import dataclass, field

import numpy as np

MODES = ("priority", "even", "auto")
DEFAULT_FLOOR = 0.01          # each servable offer's minimum share of first positions in auto
MAX_TOTAL_FLOOR = 0.25        # with many offers the floors together never take more than this
PRIOR_CONVERSIONS = 2.0       # weight of the priority prior on conversions per click
PRIOR_IMPRESSIONS = 50.0      # weight of the pooled CTR prior, in impressions
PRIOR_PAYOUTS = 1.0           # weight of the stated payout against observed ones, in conversions
MIN_DELAY_SAMPLES = 10        # fewer observed delays: no lag correction (nothing to base it on)
DEFAULT_CTR = 0.03            # pooled values used until the property has data of its own
DEFAULT_CONVERSIONS_PER_CLICK = 0.1
DEFAULT_PAYOUT_CENTS = 500.0
DAY_GRID = 24                 # points per day over which a day's maturity is averaged


# --- priority and even ----------------------------------------------------------------------------

def _uniforms(rng, shape):
    """Uniform [0, 1) draws from a numpy Generator, a random.Random or the random module."""
    if isinstance(rng, np.random.Generator):
        return rng.random(shape)
    count = int(np.prod(shape))
    return np.fromiter((rng.random() for _ in range(count)), float, count).reshape(shape)


def priority_keys(priorities, rng, draws=1):
    """Efraimidis-Spirakis keys u ** (1 / w): sorting by them descending is exactly sequential
    priority-weighted sampling without replacement. Shape (draws, offers)."""
    weights = np.maximum(np.asarray(priorities, dtype=float), 1.0)
    return _uniforms(rng, (draws, len(weights))) ** (1.0 / weights)


def first_positions(mode, rng, draws, priorities=None, params=None, floor=DEFAULT_FLOOR):
    """Indices of the offer shown first in each of `draws` independent requests.

    The per-request path (`order_offers`) draws through the same functions one request at a
    time; the simulation calls this to serve thousands of impressions at once.
    """
    if mode == "auto":
        return draw_auto(params, rng, draws, floor)[1]
    if mode == "even":
        priorities = np.ones(len(priorities))
    return np.argmax(priority_keys(priorities, rng, draws), axis=1)


# --- auto: the learned state ------------------------------------------------------------------

@dataclass(frozen=True)
class Rollups:
    """A property's per-offer, per-day aggregates (rows of daily_stats), as arrays.

    day_starts/day_ends: UTC epoch seconds bounding each business day (DST days are 23 or 25 h);
    impressions, clicks, conversions, revenue_cents: shape (offers, days), conversions and
    revenue counted on their click's day, as daily_stats counts them.
    """
    offer_ids: tuple
    day_starts: np.ndarray
    day_ends: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    revenue_cents: np.ndarray


@dataclass(frozen=True)
class Params:
    """Posterior parameters of the offers in one order (arrays of equal length)."""
    ctr_a: np.ndarray             # Beta(ctr_a, ctr_b) on CTR
    ctr_b: np.ndarray
    cpc_shape: np.ndarray         # Gamma(cpc_shape, rate=cpc_rate) on conversions per click
    cpc_rate: np.ndarray
    payout: np.ndarray            # cents per conversion

    def take(self, index):
        return Params(self.ctr_a[index], self.ctr_b[index], self.cpc_shape[index],
                      self.cpc_rate[index], self.payout[index])


@dataclass(frozen=True)
class RotationState:
    """What `auto` has learned for one property at `built_at`; cheap to read per request."""
    built_at: float
    floor: float
    index: dict                   # offer id -> row of params
    params: Params
    pooled_ctr: float
    pooled_revenue_per_click: float   # cents, from effective clicks
    mean_priority: float
    pooled_payout: float
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def params_for(self, offers):
        """Params for these offers in their order; offers unknown at build time get the prior.

        Cached per id sequence: a property serves the same few offer lists until its next state.
        """
        ids = tuple(offer["id"] for offer in offers)
        params = self.cache.get(ids)
        if params is None:
            params = self.cache[ids] = self._params_for(offers)
        return params

    def _params_for(self, offers):
        rows = [self.index.get(offer["id"], -1) for offer in offers]
        if min(rows, default=0) >= 0:
            return self.params.take(np.asarray(rows))
        return _stack([self.params.take(np.asarray([row])) if row >= 0 else self._prior(offer)
                       for offer, row in zip(offers, rows)])

    def _prior(self, offer):
        empty = np.zeros(1)
        return _posterior(empty, empty, empty, empty, empty, np.asarray([offer["priority"]], float),
                          self.mean_priority, _stated_payouts([offer], self.pooled_payout),
                          self.pooled_ctr, self.pooled_revenue_per_click)


def _stack(parts):
    return Params(*(np.concatenate([getattr(p, name) for p in parts])
                    for name in ("ctr_a", "ctr_b", "cpc_shape", "cpc_rate", "payout")))


def day_maturity(day_starts, day_ends, now, delays_s):
    """Per day, the share of its clicks' conversions that can have arrived by `now`.

    A day's clicks are spread over its elapsed part (up to now for today); their maturity is the
    delay CDF averaged over that span, on a grid of DAY_GRID points.
    """
    starts = np.asarray(day_starts, dtype=float)
    maturity = np.ones(len(starts))
    delays = np.sort(np.asarray(delays_s, dtype=float))
    if len(delays) < MIN_DELAY_SAMPLES:
        return maturity
    # Only days younger than the longest delay seen can be immature: typically the last two.
    young = np.asarray(day_ends, dtype=float) > now - delays[-1]
    ends = np.minimum(np.asarray(day_ends, dtype=float)[young], now)
    fractions = (np.arange(DAY_GRID) + 0.5) / DAY_GRID
    moments = starts[young, None] + (ends - starts[young])[:, None] * fractions[None, :]
    maturity[young] = (np.searchsorted(delays, now - moments, side="right") / len(delays)).mean(axis=1)
    return maturity


def _stated_payouts(offers, fallback):
    return np.asarray([float(offer.get("payout_cents") or fallback) for offer in offers])


def _posterior(impressions, clicks, conversions, revenue, effective_clicks, priorities,
               mean_priority, stated_payout, pooled_ctr, pooled_rpc):
    """Params from per-offer totals and the pooled priors (all arrays over offers)."""
    clicks = np.minimum(clicks, impressions)
    ctr_a = PRIOR_IMPRESSIONS * pooled_ctr + clicks
    ctr_b = PRIOR_IMPRESSIONS * (1 - pooled_ctr) + impressions - clicks
    payout = (revenue + PRIOR_PAYOUTS * stated_payout) / (conversions + PRIOR_PAYOUTS)
    # Priority as the prior: the expected revenue per click scales with priority / mean priority.
    prior_rpc = pooled_rpc * np.maximum(priorities, 1.0) / mean_priority
    prior_cpc = np.maximum(prior_rpc / payout, 1e-9)
    cpc_shape = PRIOR_CONVERSIONS + conversions
    cpc_rate = PRIOR_CONVERSIONS / prior_cpc + effective_clicks
    return Params(ctr_a, ctr_b, cpc_shape, cpc_rate, payout)


def build_state(offers, rollups, delays_s, now, floor=DEFAULT_FLOOR, delay_correction=True):
    """The learned state for a property's servable offers.

    offers: [{"id", "priority", optional "payout_cents"}]; rollups: Rollups (offers absent from
    it have no history yet); delays_s: observed click-to-conversion delays in seconds; now: UTC
    epoch seconds; delay_correction False counts every click as fully matured (for comparison).
    """
    row_of = {offer_id: row for row, offer_id in enumerate(rollups.offer_ids)}
    rows = np.asarray([row_of.get(offer["id"], -1) for offer in offers], dtype=int)
    known = rows >= 0

    def per_offer(matrix):
        totals = np.zeros(len(offers))
        if len(rollups.offer_ids) and matrix.size:
            totals[known] = matrix[rows[known]].sum(axis=1)
        return totals

    if delay_correction:
        maturity = day_maturity(rollups.day_starts, rollups.day_ends, now, delays_s)
        effective = per_offer(np.asarray(rollups.clicks, float) * maturity[None, :])
    else:
        effective = per_offer(np.asarray(rollups.clicks, float))
    impressions, clicks = per_offer(rollups.impressions), per_offer(rollups.clicks)
    conversions, revenue = per_offer(rollups.conversions), per_offer(rollups.revenue_cents)

    pooled_ctr = clicks.sum() / impressions.sum() if clicks.sum() >= 5 else DEFAULT_CTR
    pooled_payout = revenue.sum() / conversions.sum() if conversions.sum() else DEFAULT_PAYOUT_CENTS
    pooled_rpc = (revenue.sum() / effective.sum() if conversions.sum() >= 5 and effective.sum() > 0
                  else DEFAULT_CONVERSIONS_PER_CLICK * pooled_payout)
    priorities = np.asarray([offer["priority"] for offer in offers], dtype=float)
    mean_priority = float(np.maximum(priorities, 1.0).mean()) if len(offers) else 1.0
    params = _posterior(impressions, clicks, conversions, revenue, effective, priorities,
                        mean_priority, _stated_payouts(offers, pooled_payout), pooled_ctr,
                        pooled_rpc)
    return RotationState(built_at=now, floor=floor,
                         index={offer["id"]: row for row, offer in enumerate(offers)},
                         params=params, pooled_ctr=float(pooled_ctr),
                         pooled_revenue_per_click=float(pooled_rpc),
                         mean_priority=mean_priority, pooled_payout=float(pooled_payout))


# --- auto: drawing ------------------------------------------------------------------------------

def sample_rpm(params, rng, draws):
    """Posterior draws of each offer's revenue per impression in cents, shape (draws, offers)."""
    # Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b): numpy's standard_gamma on a
    # shape array is several times cheaper per call than beta() or gamma(size=...), and a
    # single request skips broadcasting altogether.
    def gamma(shape):
        return rng.standard_gamma(shape if draws == 1 else np.broadcast_to(shape, (draws, len(shape))))

    clicks = gamma(params.ctr_a)
    ctr = clicks / (clicks + gamma(params.ctr_b))
    rpm = ctr * gamma(params.cpc_shape) / params.cpc_rate * params.payout
    return rpm.reshape(draws, len(params.payout))


def total_floor(count, floor):
    return min(count * floor, MAX_TOTAL_FLOOR) if count > 1 else 0.0


def draw_auto(params, rng, draws, floor=DEFAULT_FLOOR):
    """(scores, first): Thompson draws and the offer put first in each of `draws` requests.

    With probability total_floor a uniformly chosen offer goes first (each offer's floor share);
    otherwise the offer with the best sampled RPM does.
    """
    scores = sample_rpm(params, rng, draws)
    count = scores.shape[1]
    first = np.argmax(scores, axis=1)
    explore = rng.random(draws) < total_floor(count, floor)
    if explore.any():
        first[explore] = rng.integers(count, size=int(explore.sum()))
    return scores, first


_thread_rngs = threading.local()


def _numpy_rng(rng):
    """A numpy Generator for rng: itself, one seeded from a random.Random, or one per thread."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is random:
        if not hasattr(_thread_rngs, "rng"):
            _thread_rngs.rng = np.random.default_rng()
        return _thread_rngs.rng
    return np.random.default_rng(rng.getrandbits(64))


def order_offers(offers, rng, mode="priority", state=None):
    """The offers (dicts with "id" and "priority") in the order to show them.

    rng: a numpy Generator, a random.Random or the random module. mode "auto" needs the
    property's RotationState; without one (not learned yet) it falls back to "priority".
    """
    if len(offers) < 2:
        return list(offers)
    if mode == "auto" and state is not None:
        generator = _numpy_rng(rng)
        scores, first = draw_auto(state.params_for(offers), generator, 1, state.floor)
        ranked = np.argsort(-scores[0], kind="stable").tolist()
        ranked.remove(int(first[0]))
        return [offers[int(first[0])]] + [offers[i] for i in ranked]
    priorities = [offer["priority"] for offer in offers] if mode != "even" else [1] * len(offers)
    keys = priority_keys(priorities, rng, 1)[0]
    return [offers[i] for i in np.argsort(-keys, kind="stable")]


def order(offers, rng, state):
    """The `auto` order for one request (order_offers in mode "auto")."""
    return order_offers(offers, rng, "auto", state)


# --- what the admin shows ---------------------------------------------------------------------

def first_position_shares(offers, mode, state=None, rng=None, draws=20_000):
    """{offer id: share of first positions}: exact for priority and even, sampled for auto."""
    if not offers:
        return {}
    if mode == "auto" and state is not None:
        rng = rng if rng is not None else np.random.default_rng(0)
        first = draw_auto(state.params_for(offers), rng, draws, state.floor)[1]
        counts = np.bincount(first, minlength=len(offers)) / draws
        return {offer["id"]: float(share) for offer, share in zip(offers, counts)}
    weights = np.asarray([1.0 if mode == "even" else max(offer["priority"], 1) for offer in offers])
    # Efraimidis-Spirakis puts an offer first with probability w / sum(w).
    return {offer["id"]: float(w / weights.sum()) for offer, w in zip(offers, weights)}


def learned_rpm(offers, state, rng=None, draws=20_000, level=0.9):
    """{offer id: {"rpm", "low", "high"}}: posterior mean and `level` interval of revenue per
    1,000 impressions, in cents, for the admin's "learned RPM with its uncertainty"."""
    rng = rng if rng is not None else np.random.default_rng(0)
    samples = sample_rpm(state.params_for(offers), rng, draws) * 1000
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    mean = samples.mean(axis=0)
    return {offer["id"]: {"rpm": float(m), "low": float(lo), "high": float(hi)}
            for offer, m, lo, hi in zip(offers, mean, low, high)}


def rotation_summary(offers, mode, state=None):
    """Per offer, for the Properties page: {"id", "priority", "first_share", "rpm"}, rpm being
    learned_rpm()'s figures in auto mode with a state, else None."""
    shares = first_position_shares(offers, mode, state)
    learned = learned_rpm(offers, state) if mode == "auto" and state is not None and offers else {}
    return [{"id": offer["id"], "priority": offer["priority"], "first_share": shares[offer["id"]],
             "rpm": learned.get(offer["id"])} for offer in offers]
