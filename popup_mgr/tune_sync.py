"""Offer sync with Tune: approved offers become campaigns, network facts stay current, and the
network's holds stop a campaign from being served until their cause clears.

What the sync may change on a campaign is deliberately narrow:
  * a new approved offer becomes a new, inactive campaign (for the admin to review);
  * on an existing campaign only network facts: payout, click and pixel links, and the offer's
    status, expiry and daily cap (kept in tune_offers);
  * campaigns.network_hold: set when the offer is not active, has expired, is no longer approved,
    or today's conversion cap is reached, and lifted by the first run that finds the cause gone.
It never touches what the admin wrote (titles, texts, image, priority, properties, notes, and
`active`: an admin's pause is never lifted).

A run reads everything from the network first and then applies all changes in one transaction,
so a network error changes nothing. Runs are serialised across processes by a lease.
"""
import dataclasses
import datetime as dt
import html
import json
import logging
import re
from decimal import InvalidOperation
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from popup_mgr import audit, campaigns, leases, money, signals, timeutil
from popup_mgr import db as database
from popup_mgr.tune_client import TuneError, network_cents
from popup_mgr.urls import url_problem

LEASE_NAME = "tune-sync"
LEASE_S = 30 * 60                # longer than a run with every retry and 120 s timeouts can take
ACTOR = "tune-sync"
FLAT_PAYOUT_TYPES = ("cpa_flat", "cpa_both")   # default_payout is then money per conversion
NO_EXPIRY = ("", "0000-00-00", "0000-00-00 00:00:00")

log = logging.getLogger(__name__)


class SyncBusy(RuntimeError):
    """Another sync holds the lease (the CLI and the server tried at once)."""


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that it rolls back."""


@dataclasses.dataclass
class SyncResult:
    created: list = dataclasses.field(default_factory=list)
    updated: list = dataclasses.field(default_factory=list)
    held: list = dataclasses.field(default_factory=list)          # [{"campaign_id", "reason"}]
    released: list = dataclasses.field(default_factory=list)
    unchanged: int = 0
    skipped: list = dataclasses.field(default_factory=list)       # [{"offer_id", "reason"}]: unusable offers
    dry_run: bool = False

    @property
    def changed(self):
        return bool(self.created or self.updated or self.held or self.released)

    def as_json(self):
        """The contract's answer of `sync-tune --json`."""
        return {"created": self.created, "updated": self.updated, "held": self.held,
                "released": self.released, "unchanged": self.unchanged}


@dataclasses.dataclass(frozen=True)
class NetworkOffer:
    """One approved offer as the network describes it, parsed and checked."""
    offer_id: int
    name: str
    description: str
    payout_cents: int | None     # None when the payout is not money per conversion
    payout_type: str
    status: str
    expires_at: str | None       # ISO-8601 UTC
    conversion_cap: int
    click_url: str | None
    pixel_url: str | None
    image_url: str
    aff_id: int | None

    def facts(self):
        return {"status": self.status, "payout_type": self.payout_type, "expires_at": self.expires_at,
                "conversion_cap": self.conversion_cap}


# --- the run -------------------------------------------------------------------------------------

def sync(db, client, *, actor=ACTOR, dry_run=False, now=None, tune_tz="America/New_York", app=None,
         lease_s=LEASE_S):
    """One sync run; returns its SyncResult. Raises TuneError (nothing changed) or SyncBusy.

    A dry run reads the network, applies everything in a transaction and rolls it back, so it
    reports exactly what a real run would do (created ids are the ids the campaigns would get).
    app, when given, is told that the catalog changed so that offer snapshots are rebuilt.
    """
    now = now or dt.datetime.now(timeutil.UTC)
    if dry_run:
        return _run(db, client, actor, now, tune_tz, dry_run=True)
    holder = leases.new_holder()
    if not leases.acquire(db, LEASE_NAME, holder, lease_s):
        raise SyncBusy("another Tune sync is running; try again when it has finished")
    started = timeutil.iso_now()
    try:
        result = _run(db, client, actor, now, tune_tz, dry_run=False)
    except TuneError as exc:
        _record_run(db, started, actor, "error", exc.message, {})
        raise
    except Exception as exc:
        # The Tune page and the alerts must show any failure, not only the network's.
        _record_run(db, started, actor, "error", f"{type(exc).__name__}: {exc}", {})
        raise
    finally:
        leases.release(db, LEASE_NAME, holder)
    _record_run(db, started, actor, "ok", summary(result), result.as_json() | {"skipped": result.skipped})
    if result.changed and app is not None:
        signals.notify_catalog_changed(app)
    return result


def _run(db, client, actor, now, tune_tz, dry_run):
    network = fetch(db, client, now, tune_tz)
    result = SyncResult(dry_run=dry_run)
    try:
        with database.transaction(db):
            _apply(db, network, actor, now, tune_tz, result)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return result


def summary(result):
    """'1 created, 0 updated, ...': what a run did, in words."""
    return (f"{len(result.created)} created, {len(result.updated)} updated, {len(result.held)} held,"
            f" {len(result.released)} released, {result.unchanged} unchanged"
            + (f", {len(result.skipped)} offers skipped" if result.skipped else ""))


# --- reading the network (before any write) -------------------------------------------------------

@dataclasses.dataclass
class NetworkView:
    offers: dict                 # offer id -> NetworkOffer
    skipped: list                # [{"offer_id", "reason"}]
    conversions_today: dict      # offer id -> conversions the network counts today (not rejected)


def fetch(db, client, now, tune_tz):
    """Everything the run needs from the network; raises TuneError."""
    records = client.approved_offers()
    known = set(tune_ids(db))
    offers, skipped = {}, []
    for record in records:
        offer = record.get("Offer") or {}
        try:
            offer_id = int(offer.get("id"))
        except (TypeError, ValueError):
            continue
        link = record.get("TrackingLink") if isinstance(record.get("TrackingLink"), dict) else {}
        if not link.get("click_url") and offer_id not in known:
            # Only new offers need a link now; an existing campaign keeps the one it has.
            link = client.tracking_link(offer_id)
        parsed, problem = parse_offer(record, link, tune_tz)
        if problem:
            skipped.append({"offer_id": offer_id, "reason": problem})
            log.warning("Tune offer %s skipped: %s", offer_id, problem)
            continue
        offers[offer_id] = parsed
    capped = any(offer.conversion_cap for offer in offers.values())
    counts = network_conversions_today(client, now, tune_tz) if capped else {}
    return NetworkView(offers, skipped, counts)


def network_conversions_today(client, now, tune_tz):
    """{offer id: conversions not rejected} of today in the network's time zone."""
    day = now.astimezone(ZoneInfo(tune_tz)).date().isoformat()
    counts = {}
    for row in client.conversions(f"{day} 00:00:00", f"{day} 23:59:59"):
        stat = row.get("Stat") or {}
        if str(stat.get("conversion_status", "")).lower() == "rejected":
            continue
        try:
            offer_id = int(stat.get("offer_id"))
        except (TypeError, ValueError):
            continue
        counts[offer_id] = counts.get(offer_id, 0) + 1
    return counts


def parse_offer(record, link, tune_tz):
    """(NetworkOffer, None), or (None, why it cannot be used)."""
    offer = record["Offer"]
    thumbnail = record.get("Thumbnail") if isinstance(record.get("Thumbnail"), dict) else {}
    click_url = (link.get("click_url") or "").strip() or None
    if click_url and url_problem(click_url):
        return None, f"tracking link is not a usable URL ({url_problem(click_url)})"
    pixel_url = campaigns.parse_pixel_html(link.get("impression_pixel") or "") if link.get("impression_pixel") else None
    image_url = (thumbnail.get("url") or thumbnail.get("thumbnail") or "").strip()
    payout_type = str(offer.get("payout_type") or "")
    try:
        payout_cents = network_cents(offer.get("default_payout")) if payout_type in FLAT_PAYOUT_TYPES else None
        expires_at = _expiry_utc(offer.get("expiration_date"), tune_tz)
        cap = int(offer.get("conversion_cap") or 0)
    except (InvalidOperation, ValueError) as exc:
        return None, f"unreadable offer field ({exc})"
    name = _single_line(str(offer.get("name") or "")) or f"Tune offer {offer['id']}"
    aff_id = str(link.get("affiliate_id") or "")
    return NetworkOffer(
        offer_id=int(offer["id"]), name=name, description=plain_text(str(offer.get("description") or "")),
        payout_cents=payout_cents, payout_type=payout_type, status=str(offer.get("status") or "").lower(),
        expires_at=expires_at, conversion_cap=max(cap, 0), click_url=click_url, pixel_url=pixel_url,
        image_url=image_url if image_url and not url_problem(image_url) else "",
        aff_id=int(aff_id) if aff_id.isascii() and aff_id.isdigit() and int(aff_id) > 0 else None), None


def _expiry_utc(text, tune_tz):
    """The network's expiration date-time (its own time zone) as ISO UTC; a bare date means the
    end of that day; None for no expiry."""
    text = str(text or "").strip()
    if text in NO_EXPIRY:
        return None
    zone = ZoneInfo(tune_tz)
    if len(text) == 10:
        moment = dt.datetime.combine(dt.date.fromisoformat(text) + dt.timedelta(days=1), dt.time(), zone)
    else:
        moment = dt.datetime.fromisoformat(text).replace(tzinfo=zone)
    return timeutil.iso_utc(moment)


class _TextOnly(HTMLParser):
    BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "ul", "ol"}
    HIDDEN = {"script", "style"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.BREAKS:
            self.parts.append("\n")
        self.hidden += tag in self.HIDDEN

    def handle_endtag(self, tag):
        if tag in self.BREAKS:
            self.parts.append("\n")
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def plain_text(markup, limit=2000):
    """Offer descriptions come as HTML: their text, one paragraph per line, for the campaign."""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(line for line in lines if line)[:limit]


def _single_line(text):
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", html.unescape(text)).split())


# --- holds ---------------------------------------------------------------------------------------

WITHDRAWN = "approval withdrawn: the offer is no longer among the approved offers"


def hold_reason(offer, now, conversions_today):
    """Why the network stops this offer now, or None. The reason text stays the same while the
    cause lasts, so an unchanged hold is not recorded again."""
    if offer is None:
        return WITHDRAWN
    if offer.status != "active":
        return f"offer {offer.status or 'without a status'} at the network"
    if offer.expires_at and offer.expires_at <= timeutil.iso_utc(now):
        return f"offer expired at the network ({offer.expires_at})"
    if offer.conversion_cap and conversions_today >= offer.conversion_cap:
        return f"today's conversion cap reached ({offer.conversion_cap} a day)"
    return None


def our_conversions_today(db, now, tune_tz):
    """{Tune offer id: our conversions (not rejected, not test) received today in the network's
    time zone}: postbacks arrive before the network's report shows them."""
    day = now.astimezone(ZoneInfo(tune_tz)).date().isoformat()
    start_ms, end_ms = timeutil.day_bounds_ms(day, tune_tz)
    rows = db.execute(
        "/* tune_sync.our_conversions_today */ SELECT c.tune_campaign_id AS offer_id, count(*) AS n"
        " FROM conversions v JOIN campaigns c ON c.id = v.campaign_id"
        " WHERE v.ts >= ? AND v.ts < ? AND v.status != 'rejected' AND v.is_test = 0"
        " GROUP BY c.tune_campaign_id", (start_ms, end_ms)).fetchall()
    return {row["offer_id"]: row["n"] for row in rows}


# --- applying (inside the run's transaction) ------------------------------------------------------

def tune_ids(db):
    return [row[0] for row in db.execute("/* tune_sync.tune_ids */ SELECT tune_campaign_id FROM campaigns")]


def synced_campaigns(db):
    """Every campaign with the network facts last stored for it (NULLs before its first sync)."""
    return db.execute(
        "/* tune_sync.synced_campaigns */ SELECT c.id, c.tune_campaign_id, c.payout_cents, c.click_url,"
        " c.impression_pixel_url, c.network_hold, o.status, o.payout_type, o.expires_at, o.conversion_cap,"
        " o.approved FROM campaigns c LEFT JOIN tune_offers o ON o.campaign_id = c.id ORDER BY c.id").fetchall()


def _apply(db, network, actor, now, tune_tz, result):
    result.skipped = list(network.skipped)
    ours_today = our_conversions_today(db, now, tune_tz)
    seen = set()
    for row in synced_campaigns(db):
        offer = network.offers.get(row["tune_campaign_id"])
        seen.add(row["tune_campaign_id"])
        today = max(network.conversions_today.get(row["tune_campaign_id"], 0),
                    ours_today.get(row["tune_campaign_id"], 0))
        updated = _update_facts(db, row, offer, actor) if offer else _mark_withdrawn(db, row)
        hold_changed = _set_hold(db, row, hold_reason(offer, now, today), actor, result)
        if updated:
            result.updated.append(row["id"])
        elif not hold_changed:
            result.unchanged += 1
    for offer_id, offer in network.offers.items():
        if offer_id not in seen:
            _create(db, offer, actor, now, network.conversions_today.get(offer_id, 0), result)


def _create(db, offer, actor, now, conversions_today, result):
    data = {"tune_campaign_id": offer.offer_id, "aff_id": offer.aff_id, "name": offer.name[:200],
            "display_title": offer.name[:120], "description": offer.description,
            "click_url": offer.click_url or "", "impression_pixel_url": offer.pixel_url or "",
            "image_url": offer.image_url, "active": False,
            "payout": money.format_cents(offer.payout_cents or 0)}
    clean, errors = campaigns.validate(data)
    if errors:
        result.skipped.append({"offer_id": offer.offer_id, "reason": "; ".join(
            f"{field}: {message}" for field, message in sorted(errors.items()))})
        return
    hold = hold_reason(offer, now, conversions_today)
    stamp = timeutil.iso_now()
    campaign_id = db.execute(
        "/* tune_sync.create */ INSERT INTO campaigns (tune_campaign_id, aff_id, name, display_title,"
        " description, image_url, click_url, impression_pixel_url, active, payout_cents, network_hold,"
        " created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        (clean["tune_campaign_id"], clean["aff_id"], clean["name"], clean["display_title"],
         clean["description"], clean["image_url"], clean["click_url"], clean["impression_pixel_url"],
         money.parse_cents(clean["payout"]), hold, ACTOR, stamp, stamp)).lastrowid
    _store_facts(db, campaign_id, offer, approved=True)
    created = campaigns.get(db, campaign_id)
    changes = {field: [None, created[field]] for field in campaigns.FIELDS}
    changes["network_hold"] = [None, hold]
    changes["reason"] = [None, "new approved offer at the network, inactive until reviewed"]
    audit.record(db, actor, "campaign.create", "campaign", campaign_id, changes)
    result.created.append(campaign_id)
    if hold:
        result.held.append({"campaign_id": campaign_id, "reason": hold})


def _update_facts(db, row, offer, actor):
    """Bring payout, links and the offer's facts up to the network's; True when anything changed."""
    columns = {}
    if offer.payout_cents is not None and offer.payout_cents != row["payout_cents"]:
        columns["payout_cents"] = offer.payout_cents
    if offer.click_url and offer.click_url != row["click_url"]:
        columns["click_url"] = offer.click_url
    if offer.pixel_url and offer.pixel_url != row["impression_pixel_url"]:
        columns["impression_pixel_url"] = offer.pixel_url
    before_facts = {name: row[name] for name in ("status", "payout_type", "expires_at", "conversion_cap")}
    fact_changes = {f"network_{name}": [before_facts[name], value] for name, value in offer.facts().items()
                    if before_facts[name] != value}
    if row["approved"] == 0:
        fact_changes["network_approved"] = [False, True]
    _store_facts(db, row["id"], offer, approved=True)
    if columns:
        assignments = ", ".join(f"{column} = ?" for column in columns)
        db.execute(f"/* tune_sync.update_facts */ UPDATE campaigns SET {assignments}, updated_at = ?"
                   " WHERE id = ?", [*columns.values(), timeutil.iso_now(), row["id"]])
    changes = {("payout" if column == "payout_cents" else column):
               ([money.format_cents(row[column]), money.format_cents(value)] if column == "payout_cents"
                else [row[column], value]) for column, value in columns.items()} | fact_changes
    if not changes:
        return False
    changes["reason"] = [None, "the network changed the offer"]
    audit.record(db, actor, "campaign.network_update", "campaign", row["id"], changes)
    return True


def _mark_withdrawn(db, row):
    """The offer left the approved list: remember it (the hold itself is set by _set_hold)."""
    if row["approved"] == 1:
        db.execute("/* tune_sync.mark_withdrawn */ UPDATE tune_offers SET approved = 0 WHERE campaign_id = ?",
                   (row["id"],))
    return False


def _store_facts(db, campaign_id, offer, approved):
    db.execute(
        "/* tune_sync.store_facts */ INSERT INTO tune_offers (campaign_id, offer_id, status, approved,"
        " payout_type, expires_at, conversion_cap, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (campaign_id) DO UPDATE SET status = excluded.status, approved = excluded.approved,"
        " payout_type = excluded.payout_type, expires_at = excluded.expires_at,"
        " conversion_cap = excluded.conversion_cap, seen_at = excluded.seen_at",
        (campaign_id, offer.offer_id, offer.status, int(approved), offer.payout_type, offer.expires_at,
         offer.conversion_cap, timeutil.iso_now()))


def _set_hold(db, row, reason, actor, result):
    """Place, change or lift the campaign's hold; True when it changed."""
    if reason == row["network_hold"]:
        return False
    db.execute("/* tune_sync.set_hold */ UPDATE campaigns SET network_hold = ?, updated_at = ? WHERE id = ?",
               (reason, timeutil.iso_now(), row["id"]))
    if reason is None:
        audit.record(db, actor, "campaign.network_release", "campaign", row["id"],
                     {"network_hold": [row["network_hold"], None],
                      "reason": [None, "the network's cause for the hold has cleared"]})
        result.released.append(row["id"])
    else:
        audit.record(db, actor, "campaign.network_hold", "campaign", row["id"],
                     {"network_hold": [row["network_hold"], reason], "reason": [None, reason]})
        result.held.append({"campaign_id": row["id"], "reason": reason})
    return True


# --- the record of runs --------------------------------------------------------------------------

def _record_run(db, started_at, actor, outcome, message, result):
    with database.transaction(db):
        db.execute("/* tune_sync.record_run */ INSERT INTO tune_sync_runs (started_at, finished_at, actor,"
                   " outcome, message, result) VALUES (?, ?, ?, ?, ?, ?)",
                   (started_at, timeutil.iso_now(), actor, outcome, message,
                    json.dumps(result, sort_keys=True)))


def last_run(db):
    """The latest run {"started_at", "finished_at", "actor", "outcome", "message", "result"}, or None."""
    row = db.execute("/* tune_sync.last_run */ SELECT started_at, finished_at, actor, outcome, message, result"
                     " FROM tune_sync_runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return dict(row) | {"result": json.loads(row["result"])}


def last_success(db):
    """finished_at of the latest successful run, or None (for metrics and alerts)."""
    row = db.execute("/* tune_sync.last_success */ SELECT max(finished_at) FROM tune_sync_runs"
                     " WHERE outcome = 'ok'").fetchone()
    return row[0]


def pending_review(db):
    """Campaigns the sync created (created_by is always ACTOR, whoever started the run; the audit
    log names who did) that are still inactive: the Tune page's review list."""
    return db.execute(
        "/* tune_sync.pending_review */ SELECT c.id, c.tune_campaign_id, c.name, c.payout_cents,"
        " c.network_hold, c.created_at FROM campaigns c JOIN tune_offers o ON o.campaign_id = c.id"
        " WHERE c.active = 0 AND c.created_by = ? ORDER BY c.created_at DESC, c.id DESC",
        (ACTOR,)).fetchall()
