"""Rotation: priority and even orders against their theory, and the auto bandit's floor, prior,
learning and conversion-lag correction. Seeded draws throughout; tolerances are 4-5 standard
errors of the share being checked."""
import math
import random

import numpy as np
import pytest

from popup_mgr import bandit

DAY = 86_400.0
NOW = 30 * DAY + 12 * 3600          # noon on day 30


def offers_with(priorities, payout_cents=500):
    return [{"id": 100 + i, "priority": p, "payout_cents": payout_cents} for i, p in enumerate(priorities)]


def rollups(offers, days, impressions=None, clicks=None, conversions=None, revenue=None):
    """Rollups for `offers` over the `days` days ending with today (day 30)."""
    shape = (len(offers), days)
    starts = (30 - days + 1 + np.arange(days)) * DAY
    filled = [np.zeros(shape) if values is None else np.asarray(values, float).reshape(shape)
              for values in (impressions, clicks, conversions, revenue)]
    return bandit.Rollups(tuple(o["id"] for o in offers), starts, starts + DAY, *filled)


def no_history():
    empty = np.zeros((0, 0))
    return bandit.Rollups((), np.zeros(0), np.zeros(0), empty, empty, empty, empty)


def tolerance(share, draws, sigmas=4.5):
    return sigmas * math.sqrt(share * (1 - share) / draws) + 1e-9


# --- priority and even ------------------------------------------------------------------------

PRIORITIES = [1, 2, 5, 10, 10, 3]


@pytest.mark.parametrize("make_rng", [lambda: random.Random(11), lambda: np.random.default_rng(11)],
                         ids=["random.Random", "numpy"])
def test_priority_first_and_second_positions_match_theory(make_rng):
    offers, rng, draws = offers_with(PRIORITIES), make_rng(), 30_000
    first, second = np.zeros(len(offers)), np.zeros(len(offers))
    for _ in range(draws):
        ordered = bandit.order_offers(offers, rng, "priority")
        first[ordered[0]["id"] - 100] += 1
        second[ordered[1]["id"] - 100] += 1
    weights = np.asarray(PRIORITIES, float)
    expected_first = weights / weights.sum()
    # Sequential sampling without replacement: P(j second) = sum_i P(i first) w_j / (W - w_i).
    expected_second = np.array([sum(expected_first[i] * w_j / (weights.sum() - weights[i])
                                    for i in range(len(weights)) if i != j)
                                for j, w_j in enumerate(weights)])
    for observed, expected in ((first / draws, expected_first), (second / draws, expected_second)):
        for o, e in zip(observed, expected):
            assert abs(o - e) <= tolerance(e, draws)


def test_even_is_uniform_and_ignores_priority():
    offers, rng, draws = offers_with(PRIORITIES), random.Random(5), 30_000
    counts = np.zeros(len(offers))
    for _ in range(draws):
        counts[bandit.order_offers(offers, rng, "even")[0]["id"] - 100] += 1
    for share in counts / draws:
        assert abs(share - 1 / len(offers)) <= tolerance(1 / len(offers), draws)


def test_bulk_first_positions_match_theory_and_the_admin_shares():
    offers, draws = offers_with(PRIORITIES), 200_000
    for mode in ("priority", "even"):
        first = bandit.first_positions(mode, np.random.default_rng(3), draws, priorities=PRIORITIES)
        observed = np.bincount(first, minlength=len(offers)) / draws
        expected = bandit.first_position_shares(offers, mode)
        for offer, share in zip(offers, observed):
            assert abs(share - expected[offer["id"]]) <= tolerance(expected[offer["id"]], draws)


def test_order_is_a_permutation_of_the_offers():
    offers = offers_with(PRIORITIES)
    state = bandit.build_state(offers, no_history(), [], NOW)
    for mode, kwargs in (("priority", {}), ("even", {}), ("auto", {"state": state}), ("auto", {})):
        ordered = bandit.order_offers(offers, np.random.default_rng(1), mode, **kwargs)
        assert sorted(o["id"] for o in ordered) == [o["id"] for o in offers]
        assert all(any(o is p for p in offers) for o in ordered)
    assert bandit.order_offers([], random, "auto", state) == []
    assert bandit.order_offers(offers[:1], random, "auto", state) == offers[:1]


# --- auto: the prior ----------------------------------------------------------------------------

def test_priority_prior_dominates_without_data():
    offers = offers_with([1, 3, 5, 8, 10])
    state = bandit.build_state(offers, no_history(), [], NOW)
    shares = bandit.first_position_shares(offers, "auto", state, np.random.default_rng(2), 50_000)
    ordered = [shares[o["id"]] for o in offers]
    assert ordered == sorted(ordered)                  # higher priority, more first positions
    assert shares[104] > 0.35 and shares[104] > 5 * shares[100]
    rpm = bandit.learned_rpm(offers, state)
    # The prior's expected RPM scales with priority: 10 is ten times 1.
    assert rpm[104]["rpm"] / rpm[100]["rpm"] == pytest.approx(10, rel=0.05)


def test_an_offer_added_after_the_build_starts_from_its_priority_prior():
    offers = offers_with([5, 5])
    state = bandit.build_state(offers, no_history(), [], NOW)
    newcomer = {"id": 999, "priority": 10, "payout_cents": 500}
    shares = bandit.first_position_shares(offers + [newcomer], "auto", state, np.random.default_rng(4))
    assert shares[999] > max(shares[100], shares[101])


# --- auto: learning ----------------------------------------------------------------------------

def test_learned_state_prefers_the_truly_better_offer():
    """Two weeks of matured data overrule the priorities: the low-priority offer earns twice as
    much per impression and gets most first positions."""
    offers = offers_with([10, 2])
    rng = np.random.default_rng(8)
    days = 14
    impressions = np.full((2, days), 1500.0)
    clicks = rng.binomial(1500, [[0.03], [0.03]], (2, days)).astype(float)
    conversions = rng.binomial(clicks.astype(int), [[0.05], [0.10]]).astype(float)
    history = rollups(offers, days, impressions, clicks, conversions, conversions * 500)
    state = bandit.build_state(offers, history, np.full(200, 600.0), NOW)
    shares = bandit.first_position_shares(offers, "auto", state, np.random.default_rng(9))
    assert shares[101] > 0.9
    rpm = bandit.learned_rpm(offers, state)
    # True RPM in cents per 1,000 impressions: 0.03 x 0.10 x 500 x 1000 = 1500 and 750.
    assert rpm[101]["low"] < 1500 < rpm[101]["high"]
    assert rpm[100]["low"] < 750 < rpm[100]["high"]


def test_floor_share_holds_for_a_clear_loser():
    offers = offers_with([5] * 10)
    days = 14
    impressions = np.full((10, days), 1500.0)
    clicks = np.full((10, days), 45.0)
    conversions = np.zeros((10, days))
    conversions[0] = 9.0                                  # only the first offer ever converts
    history = rollups(offers, days, impressions, clicks, conversions, conversions * 500)
    for floor in (0.01, 0.02):
        state = bandit.build_state(offers, history, np.full(200, 600.0), NOW, floor=floor)
        draws = 200_000
        first = bandit.first_positions("auto", np.random.default_rng(6), draws,
                                       params=state.params_for(offers), floor=state.floor)
        shares = np.bincount(first, minlength=10) / draws
        assert shares[0] > 1 - 10 * floor - 0.01          # the winner takes the rest
        for share in shares[1:]:
            assert share >= floor - tolerance(floor, draws)


def test_floor_holds_through_the_per_request_order():
    offers = offers_with([10, 1, 1])
    history = rollups(offers, 7, np.full((3, 7), 2000.0), np.full((3, 7), 60.0),
                      np.array([[12.0] * 7, [0.0] * 7, [0.0] * 7]), np.array([[6000.0] * 7, [0.0] * 7, [0.0] * 7]))
    state = bandit.build_state(offers, history, np.full(50, 600.0), NOW, floor=0.05)
    rng, draws = np.random.default_rng(12), 20_000
    counts = np.zeros(3)
    for _ in range(draws):
        counts[bandit.order_offers(offers, rng, "auto", state)[0]["id"] - 100] += 1
    for share in counts[1:] / draws:
        assert share >= 0.05 - tolerance(0.05, draws)


def test_total_floor_is_capped_with_many_offers():
    assert bandit.total_floor(10, 0.02) == pytest.approx(0.2)
    assert bandit.total_floor(40, 0.02) == bandit.MAX_TOTAL_FLOOR
    assert bandit.total_floor(1, 0.02) == 0.0


# --- auto: the conversion-lag correction ------------------------------------------------------

def test_maturity_follows_the_observed_delays():
    delays = np.linspace(0, 2 * DAY, 1001)              # uniform over two days
    starts = np.array([0.0, DAY, 2 * DAY, 3 * DAY])
    maturity = bandit.day_maturity(starts, starts + DAY, 3.5 * DAY, delays)
    # Day 0 is past the longest delay; day 1's clicks are 1.5-2.5 days old (F = age / 2 days
    # up to 2 days: 15/16 on average); day 2's 0.5-1.5 days (1/2); today (half elapsed) has
    # clicks 0-12 h old: 1/8.
    assert maturity[0] == 1.0
    assert maturity[1] == pytest.approx(15 / 16, abs=0.01)
    assert maturity[2] == pytest.approx(0.5, abs=0.01)
    assert maturity[3] == pytest.approx(0.125, abs=0.01)
    assert np.all(np.diff(maturity) < 0)
    # Without enough observed delays there is nothing to correct with.
    assert np.all(bandit.day_maturity(starts, starts + DAY, 3.5 * DAY, [60.0] * 5) == 1.0)


def test_lag_correction_lifts_a_young_offer_to_its_true_rate():
    """An offer live since yesterday, converting 10 % of clicks a day after the click on
    average: only the conversions that can have arrived are in. With the correction its RPM is
    estimated near the truth; without, well below it."""
    offers = offers_with([5, 5])
    rng = np.random.default_rng(21)
    delays = rng.uniform(0, 2 * DAY, 5000)              # the property's observed delays
    days = 10
    starts = (30 - days + 1 + np.arange(days)) * DAY
    clicks = np.zeros((2, days))
    clicks[0] = 300.0                                      # the established offer
    clicks[1, -2:] = 300.0                                 # the young one: yesterday and today
    maturity = bandit.day_maturity(starts, starts + DAY, NOW, delays)
    conversions = np.round(clicks * 0.10 * maturity)       # what has arrived by now
    history = bandit.Rollups((100, 101), starts, starts + DAY, clicks * 33, clicks, conversions,
                             conversions * 500)
    truth = 0.10 / 33 * 500 * 1000                         # cents per 1,000 impressions
    corrected = bandit.learned_rpm(offers, bandit.build_state(offers, history, delays, NOW))
    naive = bandit.learned_rpm(offers, bandit.build_state(offers, history, delays, NOW,
                                                          delay_correction=False))
    assert corrected[101]["rpm"] > 1.5 * naive[101]["rpm"]
    assert corrected[101]["rpm"] == pytest.approx(truth, rel=0.2)
    assert naive[101]["rpm"] < 0.7 * truth
    # The established offer's last two days are young too, but eight matured days dilute them:
    # the naive estimate is a little low, the corrected one on target.
    assert corrected[100]["rpm"] == pytest.approx(truth, rel=0.1)
    assert 0.75 * truth < naive[100]["rpm"] < corrected[100]["rpm"]


def test_rotation_summary_for_the_properties_page():
    offers = offers_with([2, 8])
    summary = bandit.rotation_summary(offers, "priority")
    assert [(row["id"], row["first_share"], row["rpm"]) for row in summary] == [(100, 0.2, None), (101, 0.8, None)]
    state = bandit.build_state(offers, no_history(), [], NOW)
    auto = bandit.rotation_summary(offers, "auto", state)
    assert auto[1]["first_share"] > auto[0]["first_share"]
    assert auto[0]["rpm"]["low"] < auto[0]["rpm"]["rpm"] < auto[0]["rpm"]["high"]
    ordered = bandit.order(offers, np.random.default_rng(0), state)
    assert sorted(o["id"] for o in ordered) == [100, 101]
