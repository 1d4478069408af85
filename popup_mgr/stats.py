"""Experiment statistics on per-arm aggregates: the numbers behind an experiment's card.

GrowthBook's engine (gbstats) is the reference, formula for formula, so that the figures can be
checked against a well-known implementation:
  - relative lift of each arm over the control "a", its variance by the delta method;
  - Bayesian chance to win on the relative effect with a flat (improper) prior, as gbstats'
    EffectBayesianABTest does by default;
  - an always-valid p-value and interval from an asymptotic confidence sequence
    (Waudby-Smith et al. 2023, as gbstats' SequentialTwoSidedTTest, tuning parameter 5000), so
    Mike may look every day without inflating false alarms;
  - the sample ratio mismatch check (chi-square of visitors against the weights).
On top: "days left" from a power estimate at the current traffic, and a one-sentence verdict.

Metrics (per impression, the unit the popup serves):
  "ctr"  a proportion: total = total_sq = clicks (clipped into [0, n], so double clicks on one
         impression never make a rate above 1 or a negative variance);
  "rpm"  a mean: total = revenue cents summed over impressions, total_sq = sum of squared
         per-conversion payouts (an impression earns 0 or one payout).
"""
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05                          # two-sided level of every interval and decision
SEQUENTIAL_TUNING = 5000              # gbstats' default: the sample size the sequence is tuned for
SRM_ALPHA = 0.001                     # split mismatch is flagged below this p-value
SRM_MIN_VISITORS = 8                  # per arm; fewer and chi-square says nothing reliable
POWER = 0.8                           # "days left" is the time until an 80 % chance of a decision
MAX_DAYS_LEFT = 365                   # beyond a year at current traffic: no estimate worth showing
MIN_DAYS_RUNNING = 1 / 24             # an hour of data at least before traffic is extrapolated

METRIC_NAMES = {"rpm": "revenue per 1,000 impressions", "ctr": "click-through rate"}


@dataclass(frozen=True)
class ArmData:
    key: str            # "a" (control), "b", "c", "d"
    weight: float       # planned share of visitors, any positive scale
    visitors: int       # distinct sessions assigned
    n: int              # impressions
    total: float        # clicks ("ctr") or revenue cents ("rpm")
    total_sq: float     # clicks ("ctr") or sum of squared payouts in cents ("rpm")


@dataclass(frozen=True)
class Moments:
    """Mean and variance per impression of one arm's metric."""
    n: int
    mean: float
    variance: float


def arm_moments(arm, metric):
    """The arm's metric per impression; defined for every count, zero impressions included."""
    n = max(int(arm.n), 0)
    if metric == "ctr":
        clicks = min(max(float(arm.total), 0.0), n)
        mean = clicks / n if n else 0.0
        return Moments(n, mean, mean * (1.0 - mean))
    if metric == "rpm":
        total, total_sq = float(arm.total), max(float(arm.total_sq), 0.0)
        mean = total / n if n else 0.0
        variance = (total_sq - total * total / n) / (n - 1) if n > 1 else 0.0
        return Moments(n, mean, variance)
    raise ValueError(f"unknown metric {metric!r}")


def comparable(control, variant):
    """Whether a relative comparison is defined: data on both sides, a non-zero control."""
    return (control.n > 1 and variant.n > 1 and control.mean != 0
            and control.variance > 0 and variant.variance > 0)


def relative_lift(control, variant):
    """(lift, variance of lift): (mean_b - mean_a) / mean_a with the delta method's variance."""
    lift = (variant.mean - control.mean) / control.mean
    variance = (variant.variance / (control.mean ** 2 * variant.n)
                + control.variance * variant.mean ** 2 / (control.mean ** 4 * control.n))
    return lift, variance


def chance_to_win(lift, variance):
    """Posterior probability that the variant beats the control (flat prior on the lift)."""
    return float(stats.norm.sf(0.0, loc=lift, scale=math.sqrt(variance)))


def welch_dof(control, variant):
    """Welch-Satterthwaite degrees of freedom, as gbstats uses for its t intervals."""
    a, b = control.variance / control.n, variant.variance / variant.n
    return (a + b) ** 2 / (a ** 2 / (control.n - 1) + b ** 2 / (variant.n - 1))


def fixed_horizon(control, variant, alpha=ALPHA):
    """(p-value, [low, high]) of the classical t-test: valid only when looked at once.
    For comparable() pairs only, like the other comparisons."""
    lift, variance = relative_lift(control, variant)
    dof, se = welch_dof(control, variant), math.sqrt(variance)
    p_value = float(2 * stats.t.sf(abs(lift) / se, dof))
    half = float(stats.t.ppf(1 - alpha / 2, dof)) * se
    return p_value, [lift - half, lift + half]


def _rho(alpha=ALPHA, tuning=SEQUENTIAL_TUNING):
    # Waudby-Smith et al. eq. 161: the mixture's spread, tuned to be tightest near `tuning` units.
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def sequential_half_width(variance, total_n, alpha=ALPHA, tuning=SEQUENTIAL_TUNING):
    """Half-width of the always-valid interval after total_n units (Waudby-Smith eq. 9)."""
    rho = _rho(alpha, tuning)
    spread = variance * total_n
    inflation = total_n * rho ** 2 + 1
    return math.sqrt(spread) * math.sqrt(
        2 * inflation * math.log(math.sqrt(inflation) / alpha) / (total_n * rho) ** 2)


def sequential(control, variant, alpha=ALPHA, tuning=SEQUENTIAL_TUNING):
    """(always-valid p-value, [low, high]) of the relative lift (gbstats' sequential engine)."""
    lift, variance = relative_lift(control, variant)
    total_n = control.n + variant.n
    rho = _rho(alpha, tuning)
    spread = variance * total_n                    # the lift's variance per unit
    inflation = total_n * rho ** 2 + 1
    # The normal mixture martingale (eq. 155) is an e-value; its inverse is a p-value valid at
    # any time. Kept in logs so that a decisive result never overflows.
    log_evalue = (rho ** 2 * lift ** 2 * total_n ** 2 / (2 * spread * inflation)
                  - 0.5 * math.log(inflation))
    p_value = 1.0 if log_evalue <= 0 else float(math.exp(-log_evalue))
    half = sequential_half_width(variance, total_n, alpha, tuning)
    return p_value, [lift - half, lift + half]


def srm(arms):
    """{"p_value", "mismatch"}: chi-square of visitors vs weights; None until 8 per arm."""
    visitors = [max(int(arm.visitors), 0) for arm in arms]
    if len(arms) < 2 or min(visitors) < SRM_MIN_VISITORS:
        return {"p_value": None, "mismatch": False}
    weights = np.array([arm.weight for arm in arms], dtype=float)
    expected = weights / weights.sum() * sum(visitors)
    p_value = float(stats.chisquare(visitors, expected).pvalue)
    return {"p_value": p_value, "mismatch": p_value < SRM_ALPHA}


def compare(control, variant):
    """One non-control arm's results; every figure None when no comparison is defined yet."""
    if not comparable(control, variant):
        return {"chance_to_win": None, "lift": {"estimate": None, "ci": None}, "p_value": None}
    lift, variance = relative_lift(control, variant)
    p_value, interval = sequential(control, variant)
    return {"chance_to_win": chance_to_win(lift, variance),
            "lift": {"estimate": lift, "ci": interval}, "p_value": p_value}


def days_to_decision(control, variant, impressions_per_day):
    """Days until the sequential test has an 80 % chance to decide, if the lift stays as seen.

    The estimated lift is taken as the truth and its variance shrinks as 1/N; the decision comes
    at the first N where lift - z_0.8 * se(N) clears the always-valid half-width at N. 0 when it is
    decided already; None when the lift is 0, there is no traffic, or it would take over a year.
    """
    lift, variance = relative_lift(control, variant)
    n_now = control.n + variant.n
    if sequential(control, variant)[0] < ALPHA:
        return 0
    if lift == 0 or not impressions_per_day or impressions_per_day <= 0:
        return None
    spread = variance * n_now                          # variance of the lift times N: constant
    z_power = float(stats.norm.ppf(POWER))

    def margin(total_n):
        se = math.sqrt(spread / total_n)
        return abs(lift) - z_power * se - sequential_half_width(spread / total_n, total_n)

    n_max = n_now + MAX_DAYS_LEFT * impressions_per_day
    if margin(n_max) < 0:
        return None
    if margin(n_now) >= 0:
        return 0
    n_needed = optimize.brentq(margin, n_now, n_max)
    return max(1, math.ceil((n_needed - n_now) / impressions_per_day))


def analyse(arms, metric, days_running=None):
    """The experiment's `results` object (DESIGN.md), every non-control arm against arm "a".

    arms: ArmData list, control first or keyed "a"; metric: "rpm" or "ctr"; days_running: how
    long the experiment has collected data (fractional days), for the traffic rate behind
    `days_left` (None: no estimate).
    """
    control_arm = next((arm for arm in arms if arm.key == "a"), arms[0])
    others = [arm for arm in arms if arm is not control_arm]
    control = arm_moments(control_arm, metric)
    results = [{"key": arm.key, **compare(control, arm_moments(arm, metric))} for arm in others]
    split = srm(arms)
    days_left = _days_left(arms, metric, control, others, days_running)
    return {"arms": results, "srm": split, "days_left": days_left,
            "verdict": verdict(results, split, days_left, metric, control_arm.key)}


def _days_left(arms, metric, control, others, days_running):
    if not days_running or days_running < MIN_DAYS_RUNNING:
        return None
    per_day = sum(max(arm.n, 0) for arm in arms) / days_running
    candidates = []
    for arm in others:
        variant = arm_moments(arm, metric)
        if comparable(control, variant):
            # Traffic reaching this pair of arms, not the whole experiment's.
            pair_share = (control.n + variant.n) / max(sum(max(a.n, 0) for a in arms), 1)
            days = days_to_decision(control, variant, per_day * pair_share)
            if days is not None:
                candidates.append(days)
    return min(candidates) if candidates else None


# --- the sentence ------------------------------------------------------------------------------

def _percent(value):
    """+18 % / -4 % / +0.6 %: signed, one decimal only below 1 %."""
    scaled = value * 100
    text = f"{scaled:+.1f}" if abs(scaled) < 1 else f"{scaled:+.0f}"
    return text + " %"


def _leading(results):
    scored = [r for r in results if r["chance_to_win"] is not None]
    return max(scored, key=lambda r: r["chance_to_win"]) if scored else None


def verdict(results, split, days_left, metric, control_key="a"):
    """One plain sentence (or three short ones) saying what the experiment shows so far."""
    name, control = METRIC_NAMES[metric], control_key.upper()
    best = _leading(results)
    if best is None:
        what = "clicks" if metric == "ctr" else "revenue"
        return (f"Not enough data yet: every arm needs impressions, and {control} needs {what}, "
                f"before the arms can be compared." + _split_sentence(split))
    chance, lift = best["chance_to_win"], best["lift"]
    low, high = lift["ci"]
    head = (f"{best['key'].upper()} has a {chance * 100:.0f} % chance to beat {control} on {name}: "
            f"{_percent(lift['estimate'])} ({_percent(low)} to {_percent(high)}).")
    return head + _time_sentence(best, days_left) + _split_sentence(split)


def _time_sentence(best, days_left):
    if best["p_value"] is not None and best["p_value"] < ALPHA:
        return " The difference is significant: ready to decide."
    if days_left is None:
        return " No decision in sight at current traffic."
    if days_left <= 1:
        return " About 1 more day at current traffic."
    return f" About {days_left} more days at current traffic."


def _split_sentence(split):
    if split["p_value"] is None:
        return " Too few visitors to check the split yet."
    if split["mismatch"]:
        return (f" Split is off (p = {split['p_value']:.4f}): check the setup before trusting "
                f"the result.")
    return " Split looks healthy."
