"""Rotation strategies on a simulated property with known truth: how much does `auto` earn?

Each seed draws 10 offers (CTR 1-6 %, conversion 5-30 % of clicks, payout $1-10), Mike's
priorities as rough guesses (correlated about 0.3 with the true revenue per impression) and
click-to-conversion delays from 2 minutes to 2 days (log-uniform). 15,000 impressions a day for
30 days are served by popup_mgr.bandit's own first-position draw:
  priority  Mike's priorities, priority-weighted random (today's behaviour)
  even      uniform
  auto      Thompson sampling, state rebuilt every 300 s of simulated time from the rollups as
            they would stand then (conversions only once their postback has arrived)
  oracle    always the truly best offer
plus auto with the conversion-lag correction off, and the case where Mike's priorities are
exactly right (priority = rank of the true revenue per impression).

Revenue is what the served impressions really earned (conversions counted even if their
postback arrives after day 30). Prints means over seeds with 95 % intervals and writes
docs/rotation.png (cumulative revenue per strategy).

    python bench/rotation.py                 # 50 seeds x 30 days (a few minutes on 2 cores)
    python bench/rotation.py --seeds 4 --days 10    # quick look
"""
import argparse
import math
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from popup_mgr import bandit  # noqa: E402

DAY_S = 86_400
REFRESH_S = 300
OFFERS = 10
MIN_DELAY_S, MAX_DELAY_S = 120, 2 * DAY_S
DELAY_WINDOW = 2000           # delays of the most recent conversions the state is built from
STRATEGIES = ("priority", "even", "auto", "auto_no_lag", "oracle", "priority_exact", "auto_exact")


class World:
    """One seed's truth: per-offer CTR, conversion rate and payout, and Mike's priorities."""

    def __init__(self, seed, correlation=0.3):
        rng = np.random.default_rng([seed, 0])
        self.ctr = rng.uniform(0.01, 0.06, OFFERS)
        self.cvr = rng.uniform(0.05, 0.30, OFFERS)
        self.payout = np.round(rng.uniform(100, 1000, OFFERS))
        self.rpm = self.ctr * self.cvr * self.payout            # cents per impression
        signal = (np.log(self.rpm) - np.log(self.rpm).mean()) / np.log(self.rpm).std()
        guess = correlation * signal + math.sqrt(1 - correlation ** 2) * rng.standard_normal(OFFERS)
        self.rough = np.clip(np.round(5.5 + 2.0 * guess), 1, 10)
        self.exact = stats.rankdata(self.rpm, method="ordinal").astype(float)   # 1..10
        self.best = int(np.argmax(self.rpm))

    def offers(self, priorities):
        return [{"id": i, "priority": float(p), "payout_cents": float(self.payout[i])}
                for i, p in enumerate(priorities)]


def delays(rng, count):
    return np.exp(rng.uniform(math.log(MIN_DELAY_S), math.log(MAX_DELAY_S), count))


def outcomes(world, rng, served):
    """(clicks, conversions) per offer for `served` impressions per offer."""
    clicks = rng.binomial(served, world.ctr)
    return clicks, rng.binomial(clicks, world.cvr)


def run_static(world, rng, mode, priorities, days, per_day):
    """Daily revenue (cents) of a strategy that learns nothing: a whole day drawn at once."""
    revenue = np.zeros(days)
    for day in range(days):
        if mode == "oracle":
            served = np.bincount(np.full(per_day, world.best), minlength=OFFERS)
        else:
            first = bandit.first_positions(mode, rng, per_day, priorities=priorities)
            served = np.bincount(first, minlength=OFFERS)
        conversions = outcomes(world, rng, served)[1]
        revenue[day] = (conversions * world.payout).sum()
    return revenue


def run_auto(world, rng, priorities, days, per_day, delay_correction=True, floor=bandit.DEFAULT_FLOOR,
             newcomer=None, arrival_day=0):
    """(daily revenue in cents, impressions per offer and day) of `auto`, its state rebuilt every
    REFRESH_S from the rollups. The offer `newcomer`, if any, is only servable from arrival_day."""
    all_offers = world.offers(priorities)
    shape = (OFFERS, days)
    impressions, clicks = np.zeros(shape), np.zeros(shape)
    conversions, revenue_cents = np.zeros(shape), np.zeros(shape)
    pending = np.zeros((0, 4))              # arrival time, offer, click day, payout
    observed_delays = []
    revenue = np.zeros(days)
    blocks = DAY_S // REFRESH_S
    day_starts = np.arange(days, dtype=float) * DAY_S
    for day in range(days):
        per_block = rng.multinomial(per_day, np.full(blocks, 1 / blocks))
        live = np.asarray([i for i in range(OFFERS) if i != newcomer or day >= arrival_day])
        offers = [all_offers[i] for i in live]
        for block, count in enumerate(per_block):
            now = day * DAY_S + block * REFRESH_S
            arrived = pending[:, 0] <= now
            if arrived.any():
                done = pending[arrived]
                offer, click_day = done[:, 1].astype(int), done[:, 2].astype(int)
                np.add.at(conversions, (offer, click_day), 1)
                np.add.at(revenue_cents, (offer, click_day), done[:, 3])
                pending = pending[~arrived]
            rollups = bandit.Rollups(tuple(range(OFFERS)), day_starts[:day + 1],
                                     day_starts[:day + 1] + DAY_S, impressions[:, :day + 1],
                                     clicks[:, :day + 1], conversions[:, :day + 1],
                                     revenue_cents[:, :day + 1])
            state = bandit.build_state(offers, rollups, _delays_seen(observed_delays, now),
                                       now, floor=floor, delay_correction=delay_correction)
            first = bandit.first_positions("auto", rng, int(count), params=state.params_for(offers),
                                           floor=state.floor)
            served = np.bincount(live[first], minlength=OFFERS)
            new_clicks, new_conversions = outcomes(world, rng, served)
            impressions[:, day] += served
            clicks[:, day] += new_clicks
            revenue[day] += (new_conversions * world.payout).sum()
            total = int(new_conversions.sum())
            if total:
                offer = np.repeat(np.arange(OFFERS), new_conversions)
                click_at = now + rng.uniform(0, REFRESH_S, total)
                lag = delays(rng, total)
                observed_delays.append(np.column_stack([click_at + lag, lag]))
                pending = np.vstack([pending, np.column_stack(
                    [click_at + lag, offer, np.full(total, day), world.payout[offer]])])
    return revenue, impressions


def _delays_seen(batches, now):
    """Delays of the last DELAY_WINDOW conversions whose postback has arrived by now: what the
    server's loader reads from the ledger."""
    if not batches:
        return np.zeros(0)
    everything = np.vstack(batches) if len(batches) > 1 else batches[0]
    arrived = everything[everything[:, 0] <= now]
    # Keep the not-yet-arrived ones and the most recent arrivals only: the rest can never be read.
    recent = arrived[np.argsort(arrived[:, 0])[-DELAY_WINDOW:]]
    batches[:] = [np.vstack([recent, everything[everything[:, 0] > now]])]
    return recent[:, 1]


def simulate(args):
    seed, days, per_day, floor, with_newcomer = args
    world = World(seed)
    rng = np.random.default_rng([seed, 1])
    result = {
        "priority": run_static(world, rng, "priority", world.rough, days, per_day),
        "even": run_static(world, rng, "even", world.rough, days, per_day),
        "oracle": run_static(world, rng, "oracle", world.rough, days, per_day),
        "priority_exact": run_static(world, rng, "priority", world.exact, days, per_day),
        "auto": run_auto(world, rng, world.rough, days, per_day, floor=floor)[0],
        "auto_no_lag": run_auto(world, rng, world.rough, days, per_day, delay_correction=False,
                                floor=floor)[0],
        "auto_exact": run_auto(world, rng, world.exact, days, per_day, floor=floor)[0],
    }
    result["correlation"] = stats.spearmanr(world.rough, world.rpm)[0]
    # A new offer, the truly best one, joins a running property: is it judged on conversions
    # that cannot have arrived yet?
    arrival = days // 3
    for key, correction in (("newcomer", True), ("newcomer_no_lag", False)) if with_newcomer else ():
        revenue, impressions = run_auto(world, rng, world.rough, days, per_day, floor=floor,
                                        delay_correction=correction, newcomer=world.best,
                                        arrival_day=arrival)
        result[key] = revenue[arrival:]
        result[key + "_share"] = impressions[world.best, arrival:arrival + 3].sum() / (3 * per_day)
    return result


def interval(values):
    """Mean and 95 % t-interval half-width over seeds."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return values.mean(), float("nan")
    return values.mean(), stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))


def ratio_line(label, numerator, denominator):
    mean, half = interval(numerator / denominator)
    return f"{label:<46} {mean * 100:6.1f} %  (95 % CI {100 * (mean - half):.1f} to {100 * (mean + half):.1f} %)"


def report(results, days, late_from):
    totals = {s: np.array([r[s].sum() for r in results]) / 100 for s in STRATEGIES}
    late = {s: np.array([r[s][late_from:].sum() for r in results]) / 100 for s in STRATEGIES}
    print(f"{'strategy':<16} {'revenue over ' + str(days) + ' days ($)':>28}   "
          f"days {late_from + 1}-{days} ($)")
    for strategy in STRATEGIES:
        mean, half = interval(totals[strategy])
        late_mean, late_half = interval(late[strategy])
        print(f"{strategy:<16} {mean:14,.0f} +- {half:8,.0f}   {late_mean:10,.0f} +- {late_half:6,.0f}")
    print()
    print(ratio_line("auto / priority, all days", totals["auto"], totals["priority"]))
    print(ratio_line(f"auto / oracle, days {late_from + 1}-{days}", late["auto"], late["oracle"]))
    print(ratio_line("auto / oracle, all days", totals["auto"], totals["oracle"]))
    print(ratio_line("auto / priority, priorities exactly right", totals["auto_exact"],
                     totals["priority_exact"]))
    print(ratio_line("auto without lag correction / auto, all days", totals["auto_no_lag"],
                     totals["auto"]))
    print(ratio_line(f"auto without lag correction / auto, days 1-{late_from}",
                     np.array([r["auto_no_lag"][:late_from].sum() for r in results]),
                     np.array([r["auto"][:late_from].sum() for r in results])))
    arrival = days // 3
    joined = [r for r in results if "newcomer" in r]
    if joined:
        newcomer_report(joined, days, arrival)
    print(f"\nSpearman correlation of rough priorities with the truth: "
          f"{np.mean([r['correlation'] for r in results]):.2f} (mean over seeds)")
    return totals, late


def newcomer_report(joined, days, arrival):
    print(f"\nA new offer, the truly best, joins on day {arrival + 1} ({len(joined)} seeds):")
    print(ratio_line(f"  no lag correction / auto, days {arrival + 1}-{days}",
                     np.array([r["newcomer_no_lag"].sum() for r in joined]),
                     np.array([r["newcomer"].sum() for r in joined])))
    for key, label in (("newcomer", "with"), ("newcomer_no_lag", "without")):
        mean, half = interval([r[key + "_share"] for r in joined])
        print(f"  its share of first positions in its first 3 days, {label} lag correction: "
              f"{mean * 100:.1f} % +- {half * 100:.1f}")


def plot(results, days, path):
    """Left: mean cumulative revenue per strategy. Right: each day's revenue as a share of the
    oracle's on the same seed (paired, so the spread between simulated worlds cancels out)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"oracle": "oracle (knows the truth)", "auto": "auto",
              "auto_no_lag": "auto, no lag correction", "priority": "priority (rough guesses)",
              "even": "even"}
    colours = {"oracle": "black", "auto": "tab:green", "auto_no_lag": "tab:olive",
               "priority": "tab:blue", "even": "tab:gray"}
    lines = {"oracle": "--", "auto": "-", "auto_no_lag": ":", "priority": "-", "even": "-"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    x = np.arange(1, days + 1)
    oracle = np.array([r["oracle"] for r in results])
    for strategy, label in labels.items():
        daily = np.array([r[strategy] for r in results])
        left.plot(x, np.cumsum(daily, axis=1).mean(axis=0) / 100, lines[strategy],
                  color=colours[strategy], label=label)
        share = daily / oracle * 100
        mean = share.mean(axis=0)
        right.plot(x, mean, lines[strategy], color=colours[strategy], label=label)
        if len(results) > 1:
            half = stats.t.ppf(0.975, len(results) - 1) * share.std(axis=0, ddof=1) / math.sqrt(len(results))
            right.fill_between(x, mean - half, mean + half, color=colours[strategy], alpha=0.15)
    left.set(xlabel="day", ylabel="cumulative revenue ($), mean over seeds",
             title="Cumulative revenue")
    right.set(xlabel="day", ylabel="% of the oracle's revenue that day", ylim=(0, 110),
              title="Daily revenue vs the oracle (mean, 95 % band)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Rotation on a simulated property: 10 offers, {len(results)} seeds, "
                 f"{days} days", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=15_000)
    parser.add_argument("--floor", type=float, default=bandit.DEFAULT_FLOOR,
                        help="auto's floor share of first positions per offer")
    parser.add_argument("--newcomer-seeds", type=int, default=20,
                        help="seeds (of the first ones) that also run the new-offer scenario")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--plot", default=str(PROJECT / "docs" / "rotation.png"))
    args = parser.parse_args()

    started = time.monotonic()
    jobs = [(seed, args.days, args.per_day, args.floor, seed < args.newcomer_seeds)
            for seed in range(args.seeds)]
    with multiprocessing.Pool(args.processes) as pool:
        results = pool.map(simulate, jobs, chunksize=1)
    print(f"{args.seeds} seeds x {args.days} days x {args.per_day:,} impressions/day, "
          f"floor {args.floor:.0%} per offer ({time.monotonic() - started:.0f} s)\n")
    report(results, args.days, late_from=min(7, args.days - 1))
    if args.plot:
        plot(results, args.days, args.plot)


if __name__ == "__main__":
    main()
