"""Demo history: sample campaigns and a realistic ledger (impressions, clicks, conversions), then
the same rollup rebuild real traffic is checked against, so `popup-mgr verify` passes after it.

The ledger rows are written directly in bulk (executemany in large transactions) because ingest
one event at a time would take hours for ten million rows; the rollups are then rebuilt from
those rows with rollups.rebuild(), the one definition of daily_stats.
"""
import bisect
import datetime as dt
import time

from popup_mgr import db as database
from popup_mgr import experiments, rollups, timeutil

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BOT_SHARE = 0.004              # impressions from bots the server recognised (kept, not counted)
UNATTRIBUTED_SHARE = 0.01      # conversions whose click id the network garbled
# Five impressions in eight open a popup view: a visitor sees 1.6 offers per popup on average. Taken
# from the row id, not the random stream, so the rest of the demo history stays as it was.
VIEW_EIGHTHS = 5
DAYS_PER_TRANSACTION = 7
# A creative test running on mff for the last days of the history, so the Experiments page has
# figures to show: the Walmart offer as it is (arm a) against a reworded title and button (arm b)
# that draws a fifth more clicks.
EXPERIMENT = {"name": "Walmart card: title test", "property": "mff", "metric": "rpm",
              "campaign": "Walmart $500 Gift Card",
              "overrides": {"display_title": "Your $500 Walmart card is waiting", "cta_text": "Claim my card"}}
EXPERIMENT_DAYS = 14
EXPERIMENT_CTR_LIFT = 1.2

# Share of a day's traffic per local hour: quiet nights, a lunch bump, an evening peak.
HOUR_PROFILE = (0.8, 0.5, 0.35, 0.3, 0.3, 0.45, 0.9, 1.6, 2.4, 3.0, 3.4, 3.8,
                4.2, 4.1, 3.9, 3.8, 4.0, 4.5, 5.2, 5.8, 6.0, 5.4, 3.9, 2.0)
# Monday..Sunday: weekends are busier on the thank-you pages.
WEEKDAY_PROFILE = (0.95, 0.92, 0.94, 0.97, 1.05, 1.22, 1.18)
# Property: share of traffic, CTR multiplier, conversion-rate multiplier.
PROPERTY_PROFILE = {"mff": (0.42, 1.15, 1.05), "mmm": (0.30, 0.95, 1.0),
                    "mcad": (0.16, 0.85, 0.9), "mmd": (0.12, 1.0, 1.15)}

# name, display title, tagline, payout cents, priority, base CTR, base conversion rate,
# properties (None = all), active
CAMPAIGNS = (
    ("Sweeps - $750 Cash App", "Win $750 for Cash App", "Enter in 30 seconds", 180, 8, 0.042, 0.09, None, 1),
    ("Free Beauty Sample Box", "Free beauty samples", "Full-size products, free shipping", 250, 7, 0.036, 0.11, None, 1),
    ("Auto Insurance Quote - US", "Drivers could save $500/yr", "Compare quotes in 2 minutes", 600, 6, 0.018, 0.05, None, 1),
    ("Home Warranty Lead", "Protect your home appliances", "Plans from $1/day", 450, 5, 0.012, 0.06, ("mmm", "mcad"), 1),
    ("Walmart $500 Gift Card", "Claim a $500 Walmart card", "Limited-time reward", 150, 9, 0.051, 0.12, None, 1),
    ("Survey Junkie Signup", "Get paid for your opinion", "Join 20M members", 200, 6, 0.029, 0.14, None, 1),
    ("Kohl's $100 Reward", "Your $100 Kohl's reward", "Answer 3 questions", 120, 7, 0.044, 0.10, ("mff", "mmm"), 1),
    ("Nielsen Computer Panel", "Earn $50 a year, free", "Install and forget", 300, 5, 0.016, 0.09, None, 1),
    ("Medicare Advantage 65+", "New Medicare benefits", "See plans in your ZIP", 550, 5, 0.011, 0.07, ("mcad", "mmd"), 1),
    ("Debt Relief Consultation", "Cut your debt in half", "Free consultation", 500, 4, 0.010, 0.05, None, 1),
    ("Solar Quote - Homeowners", "Solar for $0 down", "Check eligibility", 480, 4, 0.009, 0.06, ("mmd",), 1),
    ("Credit Score Check", "See your score free", "No credit card needed", 220, 6, 0.024, 0.12, None, 1),
    ("Pet Insurance Quote", "Insure your pet from $10", "Vet bills covered", 320, 5, 0.015, 0.08, ("mff", "mmd"), 1),
    ("Baby Formula Samples", "Free formula samples", "For new parents", 160, 6, 0.033, 0.13, ("mff",), 1),
    ("Meal Kit Trial - 16 Meals", "16 free meals", "Plus free shipping", 380, 5, 0.021, 0.07, None, 1),
    ("Coupon App Install", "Save $1,000 a year", "Install the free app", 80, 7, 0.038, 0.18, None, 1),
    ("Life Insurance Quote", "Life cover from $15/mo", "No exam options", 520, 4, 0.010, 0.06, ("mmm", "mcad", "mmd"), 1),
    ("Swagbucks Paid Surveys", "Get a $10 bonus", "Surveys, games, cash", 140, 6, 0.027, 0.15, None, 1),
    ("Amazon $1000 Giveaway", "Win a $1,000 Amazon card", "Ends soon", 100, 8, 0.048, 0.11, ("mff", "mmm"), 1),
    ("Free Diaper Sample Pack", "Free diapers for baby", "Try 3 sizes", 130, 3, 0.030, 0.12, None, 0),
)

# What a visitor reads under the title (never the title again), and the offer's image in
# popup_mgr/static/demo/, served by the app itself so the demo needs no outside host.
DETAILS = {
    "Sweeps - $750 Cash App": ("One entry per person; the winner is drawn at the end of the month and paid straight to Cash App.", "cash"),
    "Free Beauty Sample Box": ("Skincare, make-up and fragrance picks from brands you know, sent to your door at no cost.", "beauty"),
    "Auto Insurance Quote - US": ("Answer a few questions about your car and see rates from top insurers side by side.", "auto"),
    "Home Warranty Lead": ("Covers repairs to your fridge, washer, heating and more when they break down.", "home"),
    "Walmart $500 Gift Card": ("Share your shopping habits in a short survey to qualify for the card.", "walmart"),
    "Survey Junkie Signup": ("Short surveys from brands, paid out by PayPal or gift card once you reach $5.", "survey"),
    "Kohl's $100 Reward": ("Tell us what you like to buy and unlock a reward to spend in store or online.", "kohls"),
    "Nielsen Computer Panel": ("Help shape what's on TV and online by sharing anonymous browsing data.", "panel"),
    "Medicare Advantage 65+": ("Plans with dental, vision and hearing extras may be available where you live.", "medicare"),
    "Debt Relief Consultation": ("Talk to a certified counsellor about lowering what you owe on credit cards.", "debt"),
    "Solar Quote - Homeowners": ("Local installers compete for your roof; see your estimated monthly savings.", "solar"),
    "Credit Score Check": ("Your score and full report from a major bureau, updated weekly, with no effect on your credit.", "credit"),
    "Pet Insurance Quote": ("Accidents, illness and check-ups for dogs and cats, with any licensed vet.", "pet"),
    "Baby Formula Samples": ("Trial sizes of leading formulas so you can find the one your baby takes to.", "formula"),
    "Meal Kit Trial - 16 Meals": ("Chef-designed recipes with pre-portioned ingredients, delivered weekly. Skip or cancel anytime.", "mealkit"),
    "Coupon App Install": ("Digital coupons for the stores near you, clipped in one tap and applied at checkout.", "coupons"),
    "Life Insurance Quote": ("Term cover for your family from A-rated insurers; many applicants skip the medical exam.", "life"),
    "Swagbucks Paid Surveys": ("Earn points for surveys, shopping and videos; redeem them for cash or gift cards.", "swagbucks"),
    "Amazon $1000 Giveaway": ("Enter with your email for a chance at the card; winners are notified by email.", "amazon"),
    "Free Diaper Sample Pack": ("Sizes newborn to 2, so you can test fit and absorbency before you buy a box.", "diapers"),
}
# A progress line at most this often (`make run` shows it while the demo history is written).
PROGRESS_EVERY_S = 2.0


def demo_image_url(base_url, name):
    """The demo offer's image, served by this app; '' for a campaign that has none."""
    slug = DETAILS.get(name, ("", ""))[1]
    return f"{base_url.rstrip('/')}/static/demo/{slug}.svg" if slug and base_url else ""


def generate(db, days=30, impressions=450_000, seed=1, tz="America/New_York", now_ms=None, base_url="",
             progress=None):
    """Write `impressions` impressions (in total, bots included) over the last `days` business days
    ending today, with their clicks and conversions, and rebuild daily_stats for those days.
    Creates the demo campaigns first if there are no campaigns (their images under base_url).
    progress(text), if given, is called with a line now and then while the rows are written.
    Returns a summary dict."""
    import random
    if days < 1 or impressions < 0:
        raise ValueError("days must be >= 1 and impressions >= 0")
    started = time.monotonic()
    rng = random.Random(seed)
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    report = _Progress(progress)
    experiment = None
    if not _campaign_count(db):
        _create_campaigns(db, rng, base_url)
        report(f"{len(CAMPAIGNS)} demo campaigns created", force=True)
        experiment = _start_experiment(db, now_ms - min(days - 1, EXPERIMENT_DAYS) * DAY_MS)
    world = _World(db, rng, tz, experiment)
    today = dt.date.fromisoformat(timeutil.business_day(now_ms, tz))
    dates = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    per_day = _split_by_day(rng, dates, impressions, tz, now_ms)
    writer = _Writer(db)
    for chunk_start in range(0, len(dates), DAYS_PER_TRANSACTION):
        with database.transaction(db):
            for date in dates[chunk_start:chunk_start + DAYS_PER_TRANSACTION]:
                writer.write(*world.day(date, per_day[date], now_ms, writer))
        done = min(chunk_start + DAYS_PER_TRANSACTION, len(dates))
        report(f"history: {done}/{len(dates)} days, {writer.impressions:,} impressions written")
    report("adding up the daily statistics...", force=True)
    rollups.rebuild(db, dates[0].isoformat(), dates[-1].isoformat())
    return {"campaigns": len(world.campaigns), "first_day": dates[0].isoformat(), "last_day": dates[-1].isoformat(),
            "impressions": writer.impressions, "clicks": writer.clicks, "conversions": writer.conversions,
            "seconds": round(time.monotonic() - started, 1)}


class _Progress:
    """Calls progress(text) at most every PROGRESS_EVERY_S seconds (always when forced)."""

    def __init__(self, progress):
        self.progress, self.last = progress, None

    def __call__(self, text, force=False):
        now = time.monotonic()
        if self.progress and (force or self.last is None or now - self.last >= PROGRESS_EVERY_S):
            self.last = now
            self.progress(text)


def _campaign_count(db):
    return db.execute("/* demo.campaign_count */ SELECT count(*) FROM campaigns").fetchone()[0]


def _create_campaigns(db, rng, base_url=""):
    now = timeutil.iso_now()
    codes = {r["code"]: r["id"] for r in db.execute("/* demo.create_campaigns */ SELECT id, code FROM properties")}
    with database.transaction(db):
        for index, (name, title, tagline, payout, priority, _ctr, _cvr, targets, active) in enumerate(CAMPAIGNS):
            offer_id = 1100 + index * 7 + rng.randrange(7)
            cur = db.execute(
                "/* demo.create_campaigns */ INSERT INTO campaigns (tune_campaign_id, aff_id, name, display_title,"
                " tagline, description, cta_text, image_url, click_url, active, priority, payout_cents, notes,"
                " created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'demo', ?, ?)",
                (offer_id, 2417, name, title, tagline, DETAILS[name][0], "Claim now" if payout < 200 else "Get started",
                 demo_image_url(base_url, name),
                 f"https://mode.go2cloud.org/aff_c?offer_id={offer_id}&aff_id=2417", active, priority, payout,
                 "Demo campaign", now, now))
            for code in targets or ():
                if code in codes:
                    db.execute("/* demo.create_campaigns */ INSERT INTO campaign_properties (campaign_id, property_id)"
                               " VALUES (?, ?)", (cur.lastrowid, codes[code]))


def _start_experiment(db, start_ms):
    """Start the demo's creative test (experiments.create checks it like any other), dated back to
    start_ms. Returns what _World needs to place visitors in its arms, or None if the demo
    campaigns do not allow it."""
    row = db.execute("/* demo.start_experiment */ SELECT id FROM campaigns WHERE name = ?",
                     (EXPERIMENT["campaign"],)).fetchone()
    if row is None:
        return None
    try:
        created = experiments.create(db, {
            "name": EXPERIMENT["name"], "property": EXPERIMENT["property"], "metric": EXPERIMENT["metric"],
            "arms": [{"campaign_id": row["id"], "weight": 50},
                     {"campaign_id": row["id"], "weight": 50, "overrides": EXPERIMENT["overrides"]}]}, "demo",
            started_at=timeutil.iso_utc(dt.datetime.fromtimestamp(start_ms / 1000, timeutil.UTC)))
    except experiments.ExperimentInvalid:
        return None
    return {"id": created["id"], "arms": created["arms"], "campaign_id": row["id"],
            "property": EXPERIMENT["property"], "start_ms": start_ms}


def _split_by_day(rng, dates, total, tz, now_ms):
    """Impressions per day: weekly seasonality, a gentle growth trend, day-to-day noise; today only
    up to now. Sums to exactly `total`."""
    weights = []
    for index, date in enumerate(dates):
        start, end = timeutil.day_bounds_ms(date, tz)
        elapsed = max(0.0, min(1.0, (now_ms - start) / (end - start)))
        trend = 0.8 + 0.4 * index / max(1, len(dates) - 1)
        weights.append(WEEKDAY_PROFILE[date.weekday()] * trend * rng.uniform(0.9, 1.1) * max(elapsed, 0.001))
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[-1 if len(counts) == 1 else rng.randrange(len(counts) - 1)] += total - sum(counts)
    return dict(zip(dates, counts))


class _World:
    """Campaigns, properties and the per-(campaign, property) rates the history is drawn from."""

    def __init__(self, db, rng, tz, experiment=None):
        self.rng, self.tz, self.experiment = rng, tz, experiment
        self.properties = [dict(r) for r in db.execute(
            "/* demo.world */ SELECT id, code, popup_placement FROM properties WHERE active = 1 ORDER BY id")]
        rows = db.execute("/* demo.world */ SELECT id, name, priority, payout_cents, active FROM campaigns"
                          " ORDER BY id").fetchall()
        specs = {spec[0]: spec for spec in CAMPAIGNS}
        targets = {}
        for r in db.execute("/* demo.world */ SELECT campaign_id, property_id FROM campaign_properties"):
            targets.setdefault(r["campaign_id"], set()).add(r["property_id"])
        self.campaigns = {r["id"]: dict(r) for r in rows}
        self.rates, self.pick = {}, {}
        for prop in self.properties:
            share, ctr_factor, cvr_factor = PROPERTY_PROFILE.get(prop["code"], (0.1, 1.0, 1.0))
            prop["share"] = share
            eligible = [r for r in rows if r["active"] and prop["id"] in targets.get(r["id"], {prop["id"]})]
            cumulative, acc = [], 0.0
            for r in eligible:
                spec = specs.get(r["name"])
                base_ctr, base_cvr = (spec[5], spec[6]) if spec else (0.025, 0.09)
                self.rates[(r["id"], prop["id"])] = (base_ctr * ctr_factor * rng.uniform(0.75, 1.25),
                                                    base_cvr * cvr_factor * rng.uniform(0.75, 1.25))
                acc += r["priority"] ** 1.5
                cumulative.append(acc)
            self.pick[prop["id"]] = ([r["id"] for r in eligible], cumulative)
        self.properties = [p for p in self.properties if self.pick[p["id"]][0]]
        if not self.properties:
            raise ValueError("no active campaign runs on any active property")
        self.property_weights = [p["share"] for p in self.properties]

    def day(self, date, count, now_ms, writer):
        """The day's ledger rows: (impressions, clicks, conversions) lists of tuples."""
        rng, day = self.rng, date.isoformat()
        start, end = timeutil.day_bounds_ms(date, self.tz)
        limit = min(end, now_ms)
        hours = list(range((end - start) // HOUR_MS))
        hour_weights = [HOUR_PROFILE[h % 24] for h in hours]
        stamps = []
        while len(stamps) < count and limit > start:
            for h in rng.choices(hours, hour_weights, k=count - len(stamps)):
                ts = start + h * HOUR_MS + rng.randrange(HOUR_MS)
                if ts < limit:
                    stamps.append(ts)
        stamps.sort()
        props = rng.choices(self.properties, self.property_weights, k=len(stamps))
        impressions, clicks, conversions = [], [], []
        for ts, prop in zip(stamps, props):
            ids, cumulative = self.pick[prop["id"]]
            campaign_id = ids[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
            is_bot = 1 if rng.random() < BOT_SHARE else 0
            row_id = writer.next_impression()
            ctr, cvr = self.rates[(campaign_id, prop["id"])]
            session_id, variant = self._arm(row_id, ts, campaign_id, prop)
            if variant == "b":
                ctr *= EXPERIMENT_CTR_LIFT
            impressions.append((row_id, f"demo-i{row_id:09d}", ts, day, campaign_id, prop["id"],
                                prop["popup_placement"], is_bot, int(row_id % 8 < VIEW_EIGHTHS), session_id, variant))
            if rng.random() >= ctr * (0.5 if is_bot else 1):
                continue
            click_ts = ts + rng.randrange(1_500, 90_000)
            if click_ts >= now_ms:
                continue
            click_day = day if click_ts < end else timeutil.business_day(click_ts, self.tz)
            click_row = writer.next_click()
            click_id = f"{click_row:08x}{rng.getrandbits(48):012x}"
            clicks.append((click_row, click_id, f"demo-c{click_row:09d}", click_ts, click_day, campaign_id,
                           prop["id"], prop["popup_placement"], is_bot, session_id, variant))
            if is_bot or rng.random() >= cvr:
                continue
            conversion = self._conversion(writer, click_row, click_id, click_ts, click_day, campaign_id,
                                          prop, now_ms, variant)
            if conversion:
                conversions.append(conversion)
        return impressions, clicks, conversions

    def _arm(self, row_id, ts, campaign_id, prop):
        """(session id, arm key) of an impression: in the demo experiment's window, its offer on
        its property, a visitor of its own placed in an arm as the server places them; else
        (None, "") as before the test."""
        test = self.experiment
        if not test or ts < test["start_ms"] or campaign_id != test["campaign_id"] or prop["code"] != test["property"]:
            return None, ""
        session_id = f"demo{row_id:012d}"
        return session_id, experiments.arm_for(test, session_id)

    def _conversion(self, writer, click_row, click_id, click_ts, click_day, campaign_id, prop, now_ms, variant=""):
        """A postback that arrives minutes to hours after the click (None if not arrived yet)."""
        rng = self.rng
        arrived = click_ts + 300_000 + int(rng.expovariate(1 / (3 * HOUR_MS)))
        if arrived >= now_ms:
            return None
        roll = rng.random()
        status = "approved" if roll < 0.96 else ("pending" if roll < 0.99 else "rejected")
        row_id = writer.next_conversion()
        transaction_id = f"{row_id:08x}{rng.getrandbits(64):016x}"
        if rng.random() < UNATTRIBUTED_SHARE:
            # The network sent a click id we never issued: kept for reconciliation, unattributed.
            return (row_id, transaction_id, f"x{rng.getrandbits(60):015x}", None, arrived, arrived, None, None,
                    None, None, None, self.campaigns[campaign_id]["payout_cents"], status)
        return (row_id, transaction_id, click_id, click_row, arrived, arrived, click_day, campaign_id, prop["id"],
                prop["popup_placement"], variant, self.campaigns[campaign_id]["payout_cents"], status)


class _Writer:
    """Allocates row ids (so clicks and conversions can refer to each other before insert) and
    inserts a day's rows with executemany."""

    def __init__(self, db):
        self.db = db
        self._ids = {table: db.execute(f"/* demo.writer */ SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
                     for table in ("impressions", "clicks", "conversions")}
        self.impressions = self.clicks = self.conversions = 0

    def _next(self, table):
        self._ids[table] += 1
        return self._ids[table]

    def next_impression(self):
        return self._next("impressions")

    def next_click(self):
        return self._next("clicks")

    def next_conversion(self):
        return self._next("conversions")

    def write(self, impressions, clicks, conversions):
        self.db.executemany(
            "/* demo.write */ INSERT INTO impressions (id, event_id, ts, day, campaign_id, property_id, placement,"
            " is_bot, is_view, session_id, variant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", impressions)
        self.db.executemany(
            "/* demo.write */ INSERT INTO clicks (id, click_id, event_id, ts, day, campaign_id, property_id,"
            " placement, is_bot, session_id, variant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", clicks)
        self.db.executemany(
            "/* demo.write */ INSERT INTO conversions (id, transaction_id, click_id, click_row_id, ts, updated_ts,"
            " day, campaign_id, property_id, placement, variant, payout_cents, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", conversions)
        self.impressions += len(impressions)
        self.clicks += len(clicks)
        self.conversions += len(conversions)
