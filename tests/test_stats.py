"""Experiment statistics against GrowthBook's engine (gbstats, installed for the tests only) on
tables of inputs, plus the behaviour of SRM, days left and the verdict."""
import math

import numpy as np
import pytest
from gbstats.bayesian.tests import EffectBayesianABTest
from gbstats.frequentist.tests import SequentialTwoSidedTTest, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm

from popup_mgr import stats
from popup_mgr.stats import ArmData

# (impressions, clicks) of control and variant: ordinary, zero clicks on either side, tiny
# samples, lopsided splits, and clicks above impressions (double clicks on one impression).
CTR_CASES = [
    ((1000, 50), (1000, 65)),
    ((20000, 612), (19500, 580)),
    ((1000, 0), (1000, 5)),
    ((1000, 50), (1000, 0)),
    ((0, 0), (1000, 5)),
    ((12, 1), (10, 3)),
    ((3, 1), (2, 1)),
    ((50000, 1500), (800, 30)),
    ((800, 30), (50000, 1300)),
    ((100, 150), (100, 20)),
    ((100, 20), (100, 150)),
    ((2, 1), (2, 1)),
]


def ctr_arms(control, variant):
    return [ArmData("a", 50, control[0], control[0], control[1], control[1]),
            ArmData("b", 50, variant[0], variant[0], variant[1], variant[1])]


def gb_proportion(n, clicks):
    # gbstats does not clip; its ProportionStatistic of clicks > n has a negative variance and
    # then gives its uninformative default, where ours gives None.
    return ProportionStatistic(n=n, sum=clicks)


def gb_results(stat_a, stat_b):
    return (EffectBayesianABTest(stat_a, stat_b).compute_result(),
            SequentialTwoSidedTTest(stat_a, stat_b).compute_result(),
            TwoSidedTTest(stat_a, stat_b).compute_result())


def assert_matches(ours, stat_a, stat_b, moments_a, moments_b):
    bayes, seq, fixed = gb_results(stat_a, stat_b)
    if bayes.error_message or seq.error_message:
        # No comparison possible: gbstats answers a placeholder (0.5, 0, [0, 0], 1), we answer None.
        assert ours == {"key": "b", "chance_to_win": None, "lift": {"estimate": None, "ci": None},
                        "p_value": None}
        return
    assert ours["chance_to_win"] == pytest.approx(bayes.chance_to_win, rel=1e-9, abs=1e-12)
    assert ours["lift"]["estimate"] == pytest.approx(seq.expected, rel=1e-12)
    assert ours["lift"]["ci"] == pytest.approx(seq.ci, rel=1e-9)
    assert ours["p_value"] == pytest.approx(seq.p_value, rel=1e-9, abs=1e-300)
    p_value, interval = stats.fixed_horizon(moments_a, moments_b)
    assert p_value == pytest.approx(fixed.p_value, rel=1e-6, abs=1e-12)
    assert interval == pytest.approx(fixed.ci, rel=1e-9)


@pytest.mark.parametrize("control, variant", CTR_CASES)
def test_ctr_matches_gbstats(control, variant):
    arms = ctr_arms(control, variant)
    ours = stats.analyse(arms, "ctr")["arms"][0]
    moments_a, moments_b = (stats.arm_moments(arm, "ctr") for arm in arms)
    assert_matches(ours, gb_proportion(*control), gb_proportion(*variant), moments_a, moments_b)


def revenue_sample(rng, impressions, conversion_rate, payouts_cents):
    """Per-impression revenue in cents: 0, or one payout drawn from payouts_cents."""
    converted = rng.random(impressions) < conversion_rate
    revenue = np.zeros(impressions)
    revenue[converted] = rng.choice(payouts_cents, converted.sum())
    return revenue


# (impressions, conversion rate, payouts) of control and variant.
RPM_CASES = [
    ((5000, 0.01, [450]), (5000, 0.012, [450])),
    ((5000, 0.01, [200, 450, 1000]), (4000, 0.01, [300, 900])),
    ((5000, 0.0, [450]), (5000, 0.01, [450])),
    ((5000, 0.01, [450]), (5000, 0.0, [450])),
    ((30, 0.1, [450]), (25, 0.2, [450])),
    ((2, 1.0, [100, 300]), (2, 1.0, [200, 250])),
    ((60000, 0.004, [1000]), (900, 0.006, [1000])),
    ((1, 1.0, [450]), (5, 0.5, [450])),
    ((0, 0.0, [450]), (100, 0.1, [450])),
]


@pytest.mark.parametrize("case", range(len(RPM_CASES)))
def test_rpm_matches_gbstats(case):
    rng = np.random.default_rng(case)
    samples = [revenue_sample(rng, n, rate, payouts) for n, rate, payouts in RPM_CASES[case]]
    arms = [ArmData(key, 50, len(s), len(s), float(s.sum()), float((s ** 2).sum()))
            for key, s in zip("ab", samples)]
    ours = stats.analyse(arms, "rpm")["arms"][0]
    moments_a, moments_b = (stats.arm_moments(arm, "rpm") for arm in arms)
    for moments, sample in zip((moments_a, moments_b), samples):
        # The aggregates give the raw data's own mean and sample variance.
        assert moments.mean == pytest.approx(sample.mean() if len(sample) else 0.0)
        if len(sample) > 1:
            assert moments.variance == pytest.approx(sample.var(ddof=1), rel=1e-9, abs=1e-9)
    gb = [SampleMeanStatistic(n=len(s), sum=float(s.sum()), sum_squares=float((s ** 2).sum()))
          for s in samples]
    assert_matches(ours, gb[0], gb[1], moments_a, moments_b)


def test_rates_are_defined_for_every_count():
    for arm in (ArmData("a", 1, 0, 0, 0, 0), ArmData("a", 1, 5, 3, 7, 7), ArmData("a", 1, 1, 1, 5, 25)):
        for metric in ("ctr", "rpm"):
            moments = stats.arm_moments(arm, metric)
            assert math.isfinite(moments.mean) and math.isfinite(moments.variance)
    # Seven clicks on three impressions are clipped to a CTR of 1, never above it.
    assert stats.arm_moments(ArmData("a", 1, 5, 3, 7, 7), "ctr").mean == 1.0


def test_three_arms_each_compared_with_control():
    arms = [ArmData("a", 34, 3000, 3000, 90, 90), ArmData("b", 33, 2950, 2950, 120, 120),
            ArmData("c", 33, 3050, 3050, 60, 60)]
    results = stats.analyse(arms, "ctr")
    assert [r["key"] for r in results["arms"]] == ["b", "c"]
    b, c = results["arms"]
    assert b["lift"]["estimate"] > 0 > c["lift"]["estimate"]
    assert b["chance_to_win"] > 0.9 and c["chance_to_win"] < 0.1
    reference = SequentialTwoSidedTTest(ProportionStatistic(n=3000, sum=90),
                                        ProportionStatistic(n=3050, sum=60)).compute_result()
    assert c["p_value"] == pytest.approx(reference.p_value)


@pytest.mark.parametrize("visitors, weights", [
    ([1000, 1000], [50, 50]), ([1000, 1200], [50, 50]), ([900, 100], [90, 10]),
    ([500, 500, 560], [34, 33, 33]), ([10, 30], [50, 50]), ([2000, 1850, 1000, 1150], [30, 30, 20, 20]),
])
def test_srm_matches_gbstats(visitors, weights):
    arms = [ArmData(key, w, v, v, 0, 0) for key, w, v in zip("abcd", weights, visitors)]
    result = stats.srm(arms)
    expected = check_srm(visitors, weights)
    assert result["p_value"] == pytest.approx(expected, rel=1e-9)
    assert result["mismatch"] is bool(expected < 0.001)


def test_srm_flags_a_skewed_split_and_waits_for_eight_visitors():
    skewed = [ArmData("a", 50, 1000, 1000, 0, 0), ArmData("b", 50, 1200, 1200, 0, 0)]
    assert stats.srm(skewed)["mismatch"] is True
    assert "Split is off" in stats.analyse(skewed, "ctr")["verdict"]
    early = [ArmData("a", 50, 7, 7, 0, 0), ArmData("b", 50, 40, 40, 0, 0)]
    # 7 vs 40 is wildly off, but 7 visitors are too few for chi-square to say anything.
    assert stats.srm(early) == {"p_value": None, "mismatch": False}


def test_sequential_interval_is_wider_than_fixed_and_agrees_with_its_p_value():
    control = stats.arm_moments(ArmData("a", 50, 8000, 8000, 400, 400), "ctr")
    for clicks in range(380, 560, 10):
        variant = stats.arm_moments(ArmData("b", 50, 8000, 8000, clicks, clicks), "ctr")
        p_value, (low, high) = stats.sequential(control, variant)
        fixed_p, (fixed_low, fixed_high) = stats.fixed_horizon(control, variant)
        assert low < fixed_low and high > fixed_high
        assert p_value >= fixed_p
        # The interval excludes 0 exactly when the always-valid p-value is below 5 %.
        assert (low > 0 or high < 0) == (p_value < 0.05)


# --- days left --------------------------------------------------------------------------------

def test_days_left_none_without_a_traffic_rate_or_a_lift():
    arms = ctr_arms((1000, 50), (1000, 60))
    assert stats.analyse(arms, "ctr")["days_left"] is None
    assert stats.analyse(ctr_arms((1000, 50), (1000, 50)), "ctr", days_running=2)["days_left"] is None


def test_days_left_zero_once_decided():
    results = stats.analyse(ctr_arms((20000, 400), (20000, 600)), "ctr", days_running=3)
    assert results["arms"][0]["p_value"] < 0.05
    assert results["days_left"] == 0
    assert "ready to decide" in results["verdict"]


def test_days_left_shrinks_with_traffic():
    arms = ctr_arms((3000, 90), (3000, 105))
    slow = stats.analyse(arms, "ctr", days_running=6)["days_left"]
    fast = stats.analyse(arms, "ctr", days_running=2)["days_left"]
    assert fast < slow


def test_days_left_gives_a_decision_with_80_percent_power():
    """Simulate the experiment's future at the estimated rates: after days_left more days at the
    same traffic, about 80 % of the futures are decided (sequential p < 5 %)."""
    days_running, per_arm_per_day = 2, 1500
    arms = ctr_arms((3000, 90), (3000, 108))
    days_left = stats.analyse(arms, "ctr", days_running=days_running)["days_left"]
    assert days_left and days_left > 2
    rng = np.random.default_rng(7)
    final_n = 3000 + days_left * per_arm_per_day
    decided = 0
    futures = 2000
    for clicks_a, clicks_b in zip(rng.binomial(final_n, 0.03, futures), rng.binomial(final_n, 0.036, futures)):
        control = stats.arm_moments(ArmData("a", 50, final_n, final_n, clicks_a, clicks_a), "ctr")
        variant = stats.arm_moments(ArmData("b", 50, final_n, final_n, clicks_b, clicks_b), "ctr")
        decided += stats.sequential(control, variant)[0] < 0.05
    # Rounding up to whole days can only add power, by little at this traffic.
    assert 0.78 <= decided / futures <= 0.9


# --- the verdict --------------------------------------------------------------------------------

def test_verdict_reads_like_the_card():
    arms = [ArmData("a", 50, 2000, 10000, 45000, 45000 * 450),
            ArmData("b", 50, 2010, 10000, 54000, 54000 * 450)]
    results = stats.analyse(arms, "rpm", days_running=2)
    verdict = results["verdict"]
    chance = results["arms"][0]["chance_to_win"]
    assert verdict.startswith(f"B has a {chance * 100:.0f} % chance to beat A on revenue per 1,000 impressions: +20 % (")
    assert f"About {results['days_left']} more days at current traffic." in verdict
    assert verdict.endswith("Split looks healthy.")


def test_verdict_without_data():
    results = stats.analyse([ArmData("a", 50, 0, 0, 0, 0), ArmData("b", 50, 0, 0, 0, 0)], "rpm")
    assert results["arms"][0]["chance_to_win"] is None
    assert results["verdict"].startswith("Not enough data yet")
    assert "Too few visitors to check the split yet." in results["verdict"]


# --- robustness -----------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

counts = st.integers(min_value=0, max_value=10 ** 7)
arm_data = st.builds(lambda visitors, n, total, extra: (visitors, n, total, total * extra),
                     counts, counts, counts, st.integers(min_value=0, max_value=10 ** 6))


@settings(max_examples=300, deadline=None)
@given(st.lists(arm_data, min_size=2, max_size=4), st.sampled_from(["ctr", "rpm"]),
       st.one_of(st.none(), st.floats(min_value=0, max_value=400)))
def test_analyse_never_raises_and_every_figure_is_finite_or_none(raw, metric, days_running):
    arms = [ArmData(key, 25, *values) for key, values in zip("abcd", raw)]
    results = stats.analyse(arms, metric, days_running)
    for arm in results["arms"]:
        for value in (arm["chance_to_win"], arm["p_value"], arm["lift"]["estimate"],
                      *(arm["lift"]["ci"] or [])):
            assert value is None or math.isfinite(value)
        if arm["p_value"] is not None:
            assert 0 <= arm["p_value"] <= 1 and 0 <= arm["chance_to_win"] <= 1
    assert results["days_left"] is None or (isinstance(results["days_left"], int) and results["days_left"] >= 0)
    assert isinstance(results["verdict"], str) and results["verdict"]
