"""Rotation, live: the order of a property's offers in `/api/offers`, in the property's mode.

  priority  priority-weighted random order (the default);
  even      uniform random order;
  auto      Thompson sampling on revenue per impression (bandit.py), from the state the property
            has learned from its rollups (rotation_data.py).

A request never queries the database and never waits for the learned state. Each app keeps the
latest state per property in memory; a request that finds its property's state missing or older
than POPUP_ROTATION_REFRESH_S (default 300 s), or the catalog changed since it was built (a new
offer, another priority), starts one background thread that rebuilds the stale `auto` states (two
queries per property) and returns at once with the state it has. Only one refresh runs at a time,
so the state is rebuilt at most once per interval whatever the traffic. Until a property's first
state exists (the first seconds after a start) `auto` answers in priority order.

Per request, `auto` costs about as much as `priority`: the refresh also draws POOL_SIZE Thompson
orders from the new state at once (vectorised, a few milliseconds), and a request picks one of
them at random. The state does not change between refreshes, so this is the same distribution
as a fresh draw per request (to within the pool's sampling error, under 1 % of first positions),
at a few microseconds instead of tens. Offers the pool was not drawn for (the catalog changed
and the refresh is under way) are drawn per request from the state.
"""
import logging
import random
import threading
import time

import numpy as np

from popup_mgr import bandit, catalog, rotation_data, signals, timeutil
from popup_mgr import db as database

DEFAULT_REFRESH_S = 300.0
RETRY_AFTER_S = 30.0        # after a failed refresh: soon enough to recover, rare enough not to spin
POOL_SIZE = 4096            # Thompson orders drawn per refresh, one picked per request
MODE_HELP = {
    "priority": "Random order weighted by priority: a priority-10 offer comes first ten times as "
                "often as a priority-1 offer.",
    "even": "Every offer comes first equally often, whatever its priority.",
    "auto": "Learns which offers earn the most per view and shows them first; priority is the "
            "starting guess, and every offer still comes first now and then.",
}
log = logging.getLogger(__name__)


# --- the order of one answer -----------------------------------------------------------------

def priority_order(offers, rng):
    """Priority-weighted random order without replacement.

    Each next slot is drawn among the remaining offers with probability proportional to their
    priority (1-10), so a priority-10 offer comes first ten times as often as a priority-1 one
    next to it, and every offer still gets shown sometimes.
    """
    # Efraimidis-Spirakis: sorting by u ** (1 / w) is exactly sequential weighted sampling.
    return sorted(offers, key=lambda offer: rng.random() ** (1.0 / max(1, offer["priority"])),
                  reverse=True)


def even_order(offers, rng):
    """Uniform random order (any rng with .random(): the random module, Random, numpy)."""
    return sorted(offers, key=lambda _offer: rng.random())


def order(app, entry, offers, rng=random):
    """offers (one placement's list of a catalog PropertyOffers `entry`) in the order of the
    property's rotation mode. The whole list: the caller caps it at the property's max_offers."""
    if len(offers) < 2:
        return list(offers)
    if entry.rotation == "auto":
        keeper = of(app)
        state = keeper.state(entry.code)
        if state is not None:
            orders = keeper.orders(entry.code, offers)
            if orders is None:
                return bandit.order(offers, rng, state)
            return [offers[i] for i in orders[int(rng.random() * len(orders))]]
    if entry.rotation == "even":
        return even_order(offers, rng)
    return priority_order(offers, rng)


# --- the learned states ------------------------------------------------------------------------

class Rotation:
    """An app's learned `auto` states, per property code, refreshed in the background."""

    def __init__(self, app, refresh_s=DEFAULT_REFRESH_S, clock=time.monotonic):
        self.app = app
        self.refresh_s = float(refresh_s)
        self.clock = clock
        self.refreshes = 0              # states built since start (shown in tests and benchmarks)
        self._states = {}               # property code -> bandit.RotationState
        self._pools = {}                # property code -> (offer ids, [Thompson order, ...])
        self._built_at = {}             # property code -> clock() when its state was built
        self._generation = 0            # bumped by every catalog change
        self._failed_at = None
        self._seed = None               # for the next refresh's pool (see _start_refresh)
        self._running = threading.Lock()    # held while the one refresh thread runs
        self._thread = None
        signals.catalog_changed.connect(self.invalidate, sender=app)

    def invalidate(self, _sender=None, **_kwargs):
        """A catalog change: every state is rebuilt on its next use, and serves until then."""
        self._generation += 1
        self._built_at = {}

    def stale(self, code):
        built_at = self._built_at.get(code)
        return built_at is None or self.clock() - built_at >= self.refresh_s

    def state(self, code):
        """The property's learned state (None before the first one is built). When it is stale,
        a background refresh starts; this call never waits for it."""
        if self.stale(code) and not self._failed_recently():
            self._start_refresh()
        return self._states.get(code)

    def _failed_recently(self):
        return self._failed_at is not None and self.clock() - self._failed_at < RETRY_AFTER_S

    def orders(self, code, offers):
        """The pool of Thompson orders (tuples of indices into offers) drawn at the last refresh
        for exactly these offers, else None."""
        pool = self._pools.get(code)
        if pool is None or len(pool[0]) != len(offers) \
                or any(offer["id"] != offer_id for offer, offer_id in zip(offers, pool[0])):
            return None
        return pool[1]

    def _start_refresh(self):
        if not self._running.acquire(blocking=False):
            return                      # one is under way: it will serve this property too
        try:
            # Seeded here, in the request's thread, so a seeded `random` makes the pool repeatable.
            self._seed = random.getrandbits(64)
            self._thread = threading.Thread(target=self._refresh_in_background, name="rotation-refresh",
                                            daemon=True)
            self._thread.start()
        except BaseException:
            self._running.release()
            raise

    def _refresh_in_background(self):
        try:
            self.refresh_stale()
            self._failed_at = None
        except Exception:
            self._failed_at = self.clock()
            log.exception("rotation: the learned state could not be refreshed; retrying in %d s",
                          RETRY_AFTER_S)
        finally:
            self._running.release()

    def wait_idle(self, timeout_s=10.0):
        """Waits for a refresh under way to finish (tests, the admin page); True when idle."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return not self._running.locked()

    def refresh_stale(self):
        """Rebuilds the stale states of every property in `auto` mode."""
        snapshot = catalog.of(self.app).current()
        codes = [code for code, entry in snapshot.properties.items()
                 if entry.rotation == "auto" and self.stale(code)]
        if codes:
            self.refresh(codes, snapshot)

    def refresh(self, codes, snapshot=None):
        """Builds these properties' states now, from the database (what the background thread
        runs; the admin page calls it for a state it needs at once)."""
        snapshot = snapshot or catalog.of(self.app).current()
        generation, started = self._generation, self.clock()
        config = self.app.config
        seed, self._seed = self._seed, None
        rng = np.random.default_rng(seed)
        with database.connection(config["DATABASE"]) as db:
            for code in codes:
                entry = snapshot.properties.get(code)
                if entry is None:
                    continue
                served = served_offers(entry)
                state = rotation_data.learned_state(db, snapshot.property_ids[code],
                                                    rotation_data.with_payouts(db, served),
                                                    timeutil.now_ms(), config["BUSINESS_TZ"])
                self._pools[code] = (tuple(offer["id"] for offer in served), auto_orders(state, served, rng))
                self._states[code] = state
                self.refreshes += 1
                # A catalog change during the build: the state serves, but is rebuilt soon.
                if generation == self._generation:
                    self._built_at[code] = started

    def state_now(self, code):
        """The property's state, built here if there is none yet (the admin page)."""
        if code not in self._states:
            self.refresh([code])
        return self._states.get(code)


def auto_orders(state, offers, rng, size=POOL_SIZE):
    """`size` Thompson orders of offers at once, each as bandit.order would give it for one
    request: the first position (floor included) from draw_auto, the rest by sampled revenue."""
    if len(offers) < 2:
        return [tuple(range(len(offers)))]
    scores, first = bandit.draw_auto(state.params_for(offers), rng, size, state.floor)
    ranked = np.argsort(-scores, axis=1, kind="stable")
    rest = ranked[ranked != first[:, None]].reshape(size, len(offers) - 1)
    return [tuple(row) for row in np.hstack([first[:, None], rest]).tolist()]


def served_offers(entry):
    """The offers a property serves ({"id", "priority", "title", ...}), the same in every placement."""
    lists = list(entry.offers_by_placement.values())
    return lists[0] if lists else []


# --- what the Properties page shows ------------------------------------------------------------

def summary(app, code):
    """Per offer the property serves: {"id", "title", "priority", "first_share", "rpm"}, rpm
    being {"rpm", "low", "high"} (cents per 1,000 impressions, 90 % interval) in `auto` mode
    and None otherwise. [] for an unknown property or one that serves nothing."""
    entry = catalog.of(app).current().properties.get(code)
    if entry is None:
        return []
    offers = served_offers(entry)
    state = of(app).state_now(code) if entry.rotation == "auto" and offers else None
    titles = {offer["id"]: offer["title"] for offer in offers}
    rows = bandit.rotation_summary(offers, entry.rotation, state)
    return sorted(({**row, "title": titles[row["id"]]} for row in rows),
                  key=lambda row: (-row["first_share"], row["id"]))


def summaries(app):
    """{property code: summary(app, code)} for every property."""
    return {code: summary(app, code) for code in catalog.of(app).current().properties}


def init_app(app):
    app.extensions["rotation"] = Rotation(app, refresh_s=app.config.get("ROTATION_REFRESH_S", DEFAULT_REFRESH_S))


def of(app):
    return app.extensions["rotation"]
