"""The catalog: one in-memory snapshot of what the public paths need to know, per app.

`GET /api/offers`, the beacons and the click redirect run on every page view and must not query
the database per request. A snapshot holds:

* per property: its popup settings, theme, and the servable offers (active campaigns in their
  schedule and not held by the network, targeted to the property or untargeted), each signed
  for every placement, with each offer's JSON and the JSON around the offers list serialised once (offers.py only orders and
  joins the pieces);
* every campaign's link target (click URL, sub-id parameter, schedule, network hold), so a beacon or click
  resolves its signed token without a query, also for a campaign paused since it was served;
* property ids and codes both ways.

It is rebuilt on the next request after `signals.catalog_changed` (an admin change shows at once),
when older than `CATALOG_TTL_S` (schedules, and changes made by another process such as the CLI or
a Tune sync: while one request rebuilds, the others keep answering from the previous snapshot),
and at most every MISS_RELOAD_S when a token names an id the snapshot does not know yet.
"""
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from popup_mgr import db as database
from popup_mgr import experiment_serving, properties, signals, theme, timeutil
from popup_mgr.ingest import tokens
from popup_mgr.ingest.errors import EventError
from popup_mgr.urls import is_http_url

DEFAULT_TTL_S = 5.0
MISS_RELOAD_S = 1.0
log = logging.getLogger(__name__)


# --- SQL ------------------------------------------------------------------------------------

def list_properties(db):
    """Every property with its popup settings, in creation order."""
    return db.execute(
        "/* catalog.list_properties */ SELECT id, code, name, active, popup_enabled,"
        " popup_frequency, popup_placement, delay_ms, theme, rotation, max_offers"
        " FROM properties ORDER BY id").fetchall()


def campaign_rows(db):
    """Every campaign with what serving and clicks need, and the property ids it targets ('' = all)."""
    return db.execute(
        "/* catalog.campaign_rows */ SELECT c.id, c.display_title, c.tagline, c.description,"
        " c.cta_text, c.image_url, c.impression_pixel_url, c.click_url, c.subid_param, c.priority,"
        " c.active, c.network_hold, c.start_at, c.end_at,"
        " (SELECT group_concat(cp.property_id) FROM campaign_properties cp"
        "   WHERE cp.campaign_id = c.id) AS property_ids"
        " FROM campaigns c ORDER BY c.id").fetchall()


# --- what a snapshot holds --------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignTarget:
    """Where a click on a campaign goes, and whether it is paused at a given time (by the admin,
    its schedule, or a hold the network placed)."""
    id: int
    click_url: str
    subid_param: str
    active: bool
    start_ms: int | None
    end_ms: int | None
    held: bool = False

    def paused(self, now_ms):
        return (not self.active or self.held or (self.start_ms is not None and now_ms < self.start_ms)
                or (self.end_ms is not None and now_ms >= self.end_ms))


@dataclass(frozen=True)
class Offer:
    """A verified token resolved against the catalog."""
    token: tokens.OfferToken
    property_id: int
    campaign: CampaignTarget


@dataclass
class PropertyOffers:
    code: str
    servable: bool                  # active and popup enabled
    placement: str
    frequency: str
    delay_ms: int
    theme: dict
    offers_by_placement: dict = field(default_factory=dict)   # placement -> [offer dict]
    # placement -> (JSON before the offers, {offer id: offer JSON}, JSON after the offers)
    serialised: dict = field(default_factory=dict)
    rotation: str = "priority"      # how offers are ordered (rotation.py)
    max_offers: int = 5             # the most offers one answer carries


@dataclass(frozen=True)
class Snapshot:
    properties: dict        # code -> PropertyOffers
    property_ids: dict      # code -> id
    property_codes: dict    # id -> code
    campaigns: dict         # id -> CampaignTarget (every campaign, servable or not)
    experiments: dict = field(default_factory=dict)   # code -> experiment_serving.RunningExperiment


def to_json(value):
    """The bytes Flask's jsonify would send for value: sorted keys, compact, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _serialise(entry, placement):
    """The /api/offers body cut around the offers list; keys in jsonify's sorted order."""
    head = (b'{"delay_ms":' + to_json(entry.delay_ms) + b',"frequency":' + to_json(entry.frequency)
            + b',"offers":[')
    pieces = {offer["id"]: to_json({key: value for key, value in offer.items() if key != "priority"})
              for offer in entry.offers_by_placement[placement]}
    tail = (b'],"placement":' + to_json(placement) + b',"property":' + to_json(entry.code)
            + b',"theme":' + to_json(entry.theme) + b"}\n")
    return head, pieces, tail


def _offer(row, base_url, secret, property_code, placement, issued_s, variant=""):
    token = tokens.sign(secret, row["id"], property_code, placement, variant, issued_s)
    pixel = row["impression_pixel_url"] or ""
    image = row["image_url"] or ""
    return {
        "id": row["id"],
        "title": row["display_title"],
        "tagline": row["tagline"] or "",
        "description": row["description"] or "",
        "cta_text": row["cta_text"] or "View Offer",
        # Stored URLs are validated on write; checked again so a bad row can never reach a page.
        "image_url": image if is_http_url(image) else "",
        "impression_pixel_url": pixel if is_http_url(pixel) else "",
        "click_url": f"{base_url}/c/{token}",
        "token": token,
        "priority": row["priority"],
    }


def _servable(row, now_iso):
    return bool(row["active"]) and not row["network_hold"] and is_http_url(row["click_url"]) \
        and (row["start_at"] is None or row["start_at"] <= now_iso) \
        and (row["end_at"] is None or row["end_at"] > now_iso)


def _property_offers(prop, servable_rows, base_url, secret, issued_s):
    entry = PropertyOffers(prop["code"], bool(prop["active"] and prop["popup_enabled"]), prop["popup_placement"],
                           prop["popup_frequency"], prop["delay_ms"], theme.merged_theme(prop["theme"]),
                           rotation=prop["rotation"], max_offers=prop["max_offers"])
    targeted = [row for row in servable_rows
                if not row["property_ids"] or str(prop["id"]) in row["property_ids"].split(",")]
    try:
        for placement in properties.PLACEMENTS:
            entry.offers_by_placement[placement] = [
                _offer(row, base_url, secret, prop["code"], placement, issued_s)
                for row in targeted] if entry.servable else []
    except ValueError:
        # A code that cannot go into a token must not take the other properties down with it.
        log.error("property %r cannot be served: its code is not token-safe", prop["code"])
        entry.servable = False
        entry.offers_by_placement = {placement: [] for placement in properties.PLACEMENTS}
    entry.serialised = {placement: _serialise(entry, placement) for placement in properties.PLACEMENTS}
    return entry


def _campaign_target(row):
    return CampaignTarget(row["id"], row["click_url"], row["subid_param"] or "aff_click_id", bool(row["active"]),
                          _iso_ms(row["start_at"]), _iso_ms(row["end_at"]), bool(row["network_hold"]))


def _iso_ms(text):
    if not text:
        return None
    try:
        return int(timeutil.parse_iso_utc(text).timestamp() * 1000)
    except ValueError:
        return None


def build(db, base_url, secret, now_iso, issued_s):
    """A Snapshot of the database as it is now."""
    campaigns = campaign_rows(db)
    servable = [row for row in campaigns if _servable(row, now_iso)]
    props = list_properties(db)
    return Snapshot(
        properties={prop["code"]: _property_offers(prop, servable, base_url, secret, issued_s) for prop in props},
        property_ids={prop["code"]: prop["id"] for prop in props},
        property_codes={prop["id"]: prop["code"] for prop in props},
        campaigns={row["id"]: _campaign_target(row) for row in campaigns},
        experiments=experiment_serving.build(
            db, servable, properties.PLACEMENTS, to_json=to_json,
            make_offer=lambda row, code, placement, variant: _offer(
                row, base_url, secret, code, placement, issued_s, variant)),
    )


# --- the app's catalog ------------------------------------------------------------------------

class Catalog:
    """The app's snapshot: built lazily, marked stale by catalog_changed, refreshed by age."""

    def __init__(self, app, ttl_s=DEFAULT_TTL_S, clock=time.monotonic):
        self.app = app
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._data = None
        self._built_at = 0.0
        self._stale = True
        signals.catalog_changed.connect(self.invalidate, sender=app)

    def invalidate(self, _sender=None, **_kwargs):
        self._stale = True

    def current(self):
        """The snapshot. After a change signal every caller waits for the rebuild (an admin
        change shows on the next request); when it is merely old, one caller rebuilds and the
        others keep the previous snapshot meanwhile."""
        data = self._data
        if data is None or self._stale:
            with self._lock:
                if self._data is None or self._stale:
                    self._rebuild()
                return self._data
        if self.clock() - self._built_at >= self.ttl_s and self._lock.acquire(blocking=False):
            try:
                if self.clock() - self._built_at >= self.ttl_s:
                    self._rebuild()
            finally:
                self._lock.release()
        return self._data

    def _rebuild(self):
        # Cleared before reading, so a change made during the build marks it stale again.
        self._stale = False
        config = self.app.config
        try:
            with database.connection(config["DATABASE"]) as db:
                self._data = build(db, config["BASE_URL"], config["SECRET_KEY"], timeutil.iso_now(),
                                   int(time.time()))
        except Exception:
            self._stale = True      # the next request tries again
            raise
        self._built_at = self.clock()

    def resolve(self, token):
        """The Offer a verified token names; EventError for an unknown property or campaign."""
        data = self.current()
        if token.property_code not in data.property_ids or token.campaign_id not in data.campaigns:
            data = self._reload_after_miss()
        property_id = data.property_ids.get(token.property_code)
        if property_id is None:
            raise EventError("unknown property")
        campaign = data.campaigns.get(token.campaign_id)
        if campaign is None:
            raise EventError("unknown campaign")
        return Offer(token, property_id, campaign)

    def _reload_after_miss(self):
        with self._lock:
            if self.clock() - self._built_at >= MISS_RELOAD_S:
                self._rebuild()
            return self._data

    def campaign(self, campaign_id):
        return self.current().campaigns.get(campaign_id)

    def property_code(self, property_id):
        return self.current().property_codes.get(property_id)


def init_app(app):
    app.extensions["catalog"] = Catalog(app, ttl_s=app.config.get("CATALOG_TTL_S", DEFAULT_TTL_S))


def of(app):
    return app.extensions["catalog"]
