"""Rotation modes through /api/offers: the first-position shares each mode promises, auto
learning from the rollups, the per-property maximum of offers, and the background refresh of the
learned state (at most every ROTATION_REFRESH_S, never waited for by a request)."""
import random
import threading
import time
from collections import Counter

import numpy as np
import pytest

from popup_mgr import bandit, catalog, rotation, rotation_data, timeutil
from popup_mgr import db as database
from popup_mgr.signals import notify_catalog_changed
from tests.helpers import add_campaign, property_id, set_property

REQUESTS = 2000
TOLERANCE = 0.035       # about 3 standard errors of a share measured over REQUESTS answers


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(app):
    fake = FakeClock()
    rotation.of(app).clock = fake
    return fake


@pytest.fixture(autouse=True)
def seeded():
    """The server draws from the random module and bandit's per-thread numpy generator: seeded,
    so every run of these tests sees the same answers."""
    saved = random.getstate()
    random.seed(20261129)
    bandit._thread_rngs.rng = np.random.default_rng(20261129)
    yield
    random.setstate(saved)
    del bandit._thread_rngs.rng


def firsts(client, code="mff", requests=REQUESTS):
    counts = Counter(client.get(f"/api/offers/{code}").json["offers"][0]["id"] for _ in range(requests))
    return {offer_id: n / requests for offer_id, n in counts.items()}


def set_rotation(app, db, code="mff", **fields):
    set_property(db, code, **fields)
    notify_catalog_changed(app)


def learned(app, client, code="mff"):
    """One request (which starts the refresh), then the refresh's end."""
    client.get(f"/api/offers/{code}")
    assert rotation.of(app).wait_idle(10)
    return rotation.of(app).state(code)


def served(app, code="mff"):
    return rotation.served_offers(catalog.of(app).current().properties[code])


@pytest.mark.parametrize("mode", ["priority", "even", "auto"])
def test_first_position_shares_match_the_mode(app, client, db, mode):
    ids = [add_campaign(db, priority=priority) for priority in (1, 2, 3, 4)]
    set_rotation(app, db, rotation=mode)
    state = learned(app, client) if mode == "auto" else None
    expected = bandit.first_position_shares(served(app), mode, state)
    if mode == "priority":
        assert expected == pytest.approx(dict(zip(ids, (0.1, 0.2, 0.3, 0.4))))
    if mode == "even":
        assert expected == pytest.approx(dict.fromkeys(ids, 0.25))
    measured = firsts(client)
    for offer_id in ids:
        assert measured.get(offer_id, 0) == pytest.approx(expected[offer_id], abs=TOLERANCE), (offer_id, mode)


def add_days(app, db, campaign_id, days, impressions, clicks, conversions, payout_cents, code="mff"):
    """Rollup rows for the `days` business days before today (what rollups.py writes)."""
    today_ms = timeutil.now_ms()
    with database.transaction(db):
        for back in range(1, days + 1):
            day = timeutil.business_day(today_ms - back * 86_400_000, app.config["BUSINESS_TZ"])
            db.execute("INSERT INTO daily_stats (day, property_id, campaign_id, placement, impressions, clicks,"
                       " conversions, revenue_cents) VALUES (?, ?, ?, 'thankyou', ?, ?, ?, ?)",
                       (day, property_id(db, code), campaign_id, impressions, clicks, conversions,
                        conversions * payout_cents))


def test_auto_puts_first_the_offer_the_rollups_show_earning(app, client, db, clock):
    favourite = add_campaign(db, priority=10, payout_cents=500)
    earner = add_campaign(db, priority=1, payout_cents=500)
    others = [add_campaign(db, priority=5, payout_cents=500) for _ in range(2)]
    set_rotation(app, db, rotation="auto")
    # No history yet: the priorities are the prior, so Mike's favourite leads.
    learned(app, client)
    before = firsts(client, requests=1000)
    assert before.get(favourite, 0) > 0.5 and before.get(earner, 0) < 0.1

    # A week of rollups: the priority-1 offer converts 15 times as often as the favourite.
    add_days(app, db, favourite, 7, 2000, 60, 1, 500)
    add_days(app, db, earner, 7, 2000, 60, 15, 500)
    for other in others:
        add_days(app, db, other, 7, 2000, 60, 3, 500)
    # Not before the refresh interval has passed: the state in use is still the old one.
    assert firsts(client, requests=300).get(earner, 0) < 0.1
    clock.now += app.config["ROTATION_REFRESH_S"]
    learned(app, client)
    after = firsts(client, requests=1000)
    assert after.get(earner, 0) > 0.85
    # The floor: every offer still comes first now and then (1 % each).
    assert all(after.get(offer_id, 0) > 0.002 for offer_id in [favourite, *others])


def test_auto_answers_in_priority_order_until_its_first_state_exists(app, client, db, monkeypatch):
    ids = [add_campaign(db, priority=priority) for priority in (1, 9)]
    set_rotation(app, db, rotation="auto")
    release = threading.Event()
    real = rotation_data.learned_state

    def held(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(rotation_data, "learned_state", held)
    started = time.monotonic()
    # While the first refresh is held, requests are answered at once, in priority order.
    counts = firsts(client, requests=400)
    assert time.monotonic() - started < 5 and rotation.of(app).state("mff") is None
    assert counts.get(ids[1], 0) == pytest.approx(0.9, abs=0.05)
    assert rotation.of(app).refreshes == 0          # and only the one refresh thread is waiting
    release.set()
    assert rotation.of(app).wait_idle(10)
    assert rotation.of(app).state("mff") is not None and rotation.of(app).refreshes == 1


def test_the_state_is_refreshed_at_most_once_per_interval(app, client, db, clock):
    add_campaign(db, priority=3)
    add_campaign(db, priority=6)
    interval = app.config["ROTATION_REFRESH_S"]
    assert interval == 300          # the default
    set_rotation(app, db, rotation="auto")
    keeper = rotation.of(app)

    def requests_at(offset, n=50):
        clock.now = 1000.0 + offset
        for _ in range(n):
            client.get("/api/offers/mff")
            keeper.wait_idle(10)
        return keeper.refreshes

    assert requests_at(0) == 1
    assert requests_at(interval - 1) == 1
    assert requests_at(interval) == 2
    assert requests_at(interval * 1.5) == 2
    # A catalog change (a new offer, another priority) is learned on the next request.
    add_campaign(db, priority=8, app=app)
    assert requests_at(interval * 1.5 + 1) == 3
    assert requests_at(interval * 2 - 1) == 3
    assert requests_at(interval * 2.5 + 1) == 4
    # The new offer is in the state built after it arrived.
    assert {offer["id"] for offer in served(app)} <= set(keeper.state("mff").index)


def test_properties_not_in_auto_never_refresh(app, client, db):
    add_campaign(db, priority=3)
    add_campaign(db, priority=6)
    for code in ("mff", "mmm"):
        client.get(f"/api/offers/{code}")
    set_rotation(app, db, "mmm", rotation="even")
    client.get("/api/offers/mmm")
    assert rotation.of(app).wait_idle(10) and rotation.of(app).refreshes == 0


@pytest.mark.parametrize("mode", ["priority", "even", "auto"])
def test_max_offers_caps_every_answer(app, client, db, mode):
    ids = {add_campaign(db, priority=priority) for priority in (1, 2, 3, 5, 7, 9, 10)}
    set_rotation(app, db, rotation=mode, max_offers=3)
    learned(app, client)
    seen = set()
    for _ in range(400):
        offers = [offer["id"] for offer in client.get("/api/offers/mff").json["offers"]]
        assert len(offers) == 3 == len(set(offers))
        seen.update(offers)
    assert seen == ids          # the cap applies after ordering: every offer still gets its turn
    set_rotation(app, db, max_offers=20)
    assert len(client.get("/api/offers/mff").json["offers"]) == 7
    assert len(client.get("/api/offers/mmm").json["offers"]) == 5      # the default elsewhere


def test_a_failed_refresh_keeps_serving_and_retries_later(app, client, db, clock, monkeypatch):
    add_campaign(db, priority=2)
    add_campaign(db, priority=8)
    set_rotation(app, db, rotation="auto")

    def broken(*_args, **_kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(rotation_data, "learned_state", broken)
    keeper = rotation.of(app)
    for _ in range(20):
        assert client.get("/api/offers/mff").status_code == 200
        keeper.wait_idle(10)
    monkeypatch.undo()
    assert keeper.state("mff") is None          # within the retry pause: not tried again yet
    keeper.wait_idle(10)
    assert keeper.refreshes == 0
    clock.now += rotation.RETRY_AFTER_S
    learned(app, client)
    assert keeper.state("mff") is not None and keeper.refreshes == 1


def test_the_pool_of_orders_has_the_distribution_of_one_draw_per_request(app, client, db):
    """auto answers from orders drawn in bulk at the refresh: each whole order (not only the first
    position) must be as likely as with bandit.order drawing afresh for every request."""
    ids = [add_campaign(db, priority=priority, payout_cents=400) for priority in (2, 5, 8)]
    for offer_id, conversions in zip(ids, (6, 4, 2)):
        add_days(app, db, offer_id, 3, 1000, 30, conversions, 400)
    set_rotation(app, db, rotation="auto")
    state = learned(app, client)
    offers = served(app)
    draws = 20_000
    pooled = Counter(rotation.auto_orders(state, offers, np.random.default_rng(7), size=draws))
    rng = np.random.default_rng(8)
    exact = Counter(tuple(offers.index(offer) for offer in bandit.order(offers, rng, state)) for _ in range(draws))
    for order in set(pooled) | set(exact):
        assert pooled[order] / draws == pytest.approx(exact[order] / draws, abs=0.015), order


def test_offers_new_since_the_last_refresh_are_served_meanwhile(app, client, db, monkeypatch):
    for priority in (3, 6):
        add_campaign(db, priority=priority)
    set_rotation(app, db, rotation="auto")
    learned(app, client)
    release = threading.Event()
    real = rotation_data.learned_state
    monkeypatch.setattr(rotation_data, "learned_state", lambda *a, **k: (release.wait(10), real(*a, **k))[1])
    newcomer = add_campaign(db, priority=10, app=app)
    # The pool was drawn without the newcomer; while the refresh is held, each answer is drawn
    # from the state (the newcomer from its prior), and the newcomer is among the offers.
    answers = [[offer["id"] for offer in client.get("/api/offers/mff").json["offers"]] for _ in range(200)]
    assert all(len(answer) == 3 and newcomer in answer for answer in answers)
    assert any(answer[0] == newcomer for answer in answers)
    release.set()
    assert rotation.of(app).wait_idle(10)
    assert rotation.of(app).orders("mff", served(app)) is not None
