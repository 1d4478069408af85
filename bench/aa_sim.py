"""A/A experiments watched every day: how often is a difference "found" where there is none?

1,000 experiments with two identical arms (7,500 impressions a day each, CTR 3 %, conversion
0.5 % of impressions at payouts of $3, $4.50 or $9) are analysed with popup_mgr.stats after
every day for 30 days. An experiment counts as a false alarm if it is ever declared
significant (p < 5 %) on any day. The always-valid (sequential) p-value must keep that share at
or below 5 %; the classical fixed-horizon p-value, valid only for a single look, shows how much
daily peeking inflates it.

    python bench/aa_sim.py                       # 1,000 experiments x 30 days
    python bench/aa_sim.py --experiments 200     # quick look
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from popup_mgr import stats  # noqa: E402
from popup_mgr.stats import ArmData  # noqa: E402

CTR = 0.03
CONVERSION = 0.005
PAYOUTS = np.array([300.0, 450.0, 900.0])


def daily_aggregates(rng, days, per_day, metric):
    """Cumulative (total, total_sq) per day for one arm, shape (days, 2)."""
    if metric == "ctr":
        clicks = np.cumsum(rng.binomial(per_day, CTR, days)).astype(float)
        return np.column_stack([clicks, clicks])
    conversions = rng.binomial(per_day, CONVERSION, days)
    by_payout = np.array([rng.multinomial(c, [1 / 3] * 3) for c in conversions])
    return np.column_stack([np.cumsum(by_payout @ PAYOUTS), np.cumsum(by_payout @ PAYOUTS ** 2)])


def watch(rng, days, per_day, metric):
    """(ever significant sequentially, ever significant fixed-horizon, significant fixed on the
    last day only) for one A/A experiment looked at daily."""
    a, b = daily_aggregates(rng, days, per_day, metric), daily_aggregates(rng, days, per_day, metric)
    sequential_hit = fixed_hit = False
    fixed_last = False
    for day in range(days):
        n = per_day * (day + 1)
        arms = [ArmData("a", 50, n, n, *a[day]), ArmData("b", 50, n, n, *b[day])]
        result = stats.analyse(arms, metric)["arms"][0]
        if result["p_value"] is None:
            continue
        sequential_hit |= result["p_value"] < stats.ALPHA
        moments = [stats.arm_moments(arm, metric) for arm in arms]
        fixed_p = stats.fixed_horizon(*moments)[0]
        fixed_hit |= fixed_p < stats.ALPHA
        fixed_last = fixed_p < stats.ALPHA if day == days - 1 else fixed_last
    return sequential_hit, fixed_hit, fixed_last


def share(hits):
    """Share and its 95 % Wilson interval."""
    count, total = int(np.sum(hits)), len(hits)
    p, z = count / total, 1.96
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return f"{100 * p:5.1f} %  (95 % CI {100 * (centre - half):.1f} to {100 * (centre + half):.1f} %)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=7500, help="impressions per arm per day")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    for metric in ("ctr", "rpm"):
        started = time.monotonic()
        rng = np.random.default_rng([args.seed, len(metric)])
        outcomes = np.array([watch(rng, args.days, args.per_day, metric)
                             for _ in range(args.experiments)])
        print(f"{metric}: {args.experiments} A/A experiments x {args.days} daily looks "
              f"({time.monotonic() - started:.0f} s)")
        print(f"  ever significant, sequential p-value:      {share(outcomes[:, 0])}")
        print(f"  ever significant, fixed-horizon p-value:   {share(outcomes[:, 1])}")
        print(f"  fixed-horizon, looked at once on day {args.days}:  {share(outcomes[:, 2])}")


if __name__ == "__main__":
    main()
