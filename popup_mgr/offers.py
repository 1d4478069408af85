"""The offers a popup may show right now, per property and placement, kept in memory.

`GET /api/offers/<property>` is called on every thank-you page view, so it must not query the
database per request. A `Snapshot` holds, for each property, its popup settings, its theme and the
servable offers (active campaigns in their schedule, targeted to the property or untargeted),
each already signed for every placement. It is rebuilt on the next request after
`signals.catalog_changed` (an admin change shows at once) and at least every `ttl_s` seconds (so
start_at/end_at schedules and edits made by other processes, e.g. the CLI, take effect).

Per request only the order is chosen, by `order_offers`, the one place rotation lives. Each
offer's JSON (its token is fixed per snapshot) and the JSON around the offers list are serialised
once per snapshot, so a request only joins the ordered pieces (`offers_body`).
"""
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field

from popup_mgr import signals, theme, timeutil, tokens
from popup_mgr.urls import is_http_url

PLACEMENTS = ("thankyou", "exit-intent", "timed")
FREQUENCIES = ("session", "daily", "always")
DEFAULT_TTL_S = 30.0
log = logging.getLogger(__name__)
OFFER_TEXT_FIELDS = ("title", "tagline", "description", "cta_text")


# --- SQL ------------------------------------------------------------------------------------

def list_properties(db):
    """Every property with its popup settings, in creation order."""
    return db.execute(
        "/* offers.list_properties */ SELECT id, code, name, active, popup_enabled,"
        " popup_frequency, popup_placement, delay_ms, theme FROM properties ORDER BY id").fetchall()


def servable_campaigns(db, now_iso):
    """Active campaigns inside their schedule, with the property ids they target ('' = all)."""
    return db.execute(
        "/* offers.servable_campaigns */ SELECT c.id, c.display_title, c.tagline, c.description,"
        " c.cta_text, c.image_url, c.impression_pixel_url, c.click_url, c.priority,"
        " (SELECT group_concat(cp.property_id) FROM campaign_properties cp"
        "   WHERE cp.campaign_id = c.id) AS property_ids"
        " FROM campaigns c"
        " WHERE c.active = 1 AND (c.start_at IS NULL OR c.start_at <= ?)"
        " AND (c.end_at IS NULL OR c.end_at > ?)"
        " ORDER BY c.id", (now_iso, now_iso)).fetchall()


# --- ordering -------------------------------------------------------------------------------

def order_offers(offers, rng):
    """The order to show offers in: priority-weighted random without replacement.

    Each next slot is drawn among the remaining offers with probability proportional to their
    priority (1-10), so a priority-10 offer comes first ten times as often as a priority-1 one
    next to it, and every offer still gets shown sometimes. Later rotation modes (by RPM, A/B)
    replace this function only.
    """
    # Efraimidis-Spirakis: sorting by u ** (1 / w) is exactly sequential weighted sampling.
    return sorted(offers, key=lambda offer: rng.random() ** (1.0 / max(1, offer["priority"])),
                  reverse=True)


# --- the snapshot ---------------------------------------------------------------------------

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


def to_json(value):
    """The bytes Flask's jsonify would send for value: sorted keys, compact, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _serialise(entry, placement):
    """The body of offers_response(), cut around the offers list; keys in jsonify's sorted order."""
    head = (b'{"delay_ms":' + to_json(entry.delay_ms) + b',"frequency":' + to_json(entry.frequency)
            + b',"offers":[')
    pieces = {offer["id"]: to_json({key: value for key, value in offer.items() if key != "priority"})
              for offer in entry.offers_by_placement[placement]}
    tail = (b'],"placement":' + to_json(placement) + b',"property":' + to_json(entry.code)
            + b',"theme":' + to_json(entry.theme) + b"}\n")
    return head, pieces, tail


def _offer(row, base_url, secret, property_code, placement, issued_s):
    token = tokens.sign(secret, row["id"], property_code, placement, "", issued_s)
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


def build(db, base_url, secret, now_iso, issued_s):
    """{property code: PropertyOffers} from the database as it is now."""
    campaigns = [row for row in servable_campaigns(db, now_iso) if is_http_url(row["click_url"])]
    result = {}
    for prop in list_properties(db):
        servable = bool(prop["active"] and prop["popup_enabled"])
        entry = PropertyOffers(prop["code"], servable, prop["popup_placement"], prop["popup_frequency"],
                               prop["delay_ms"], theme.merged_theme(prop["theme"]))
        targeted = [row for row in campaigns
                    if not row["property_ids"] or str(prop["id"]) in row["property_ids"].split(",")]
        try:
            for placement in PLACEMENTS:
                entry.offers_by_placement[placement] = [
                    _offer(row, base_url, secret, prop["code"], placement, issued_s)
                    for row in targeted] if servable else []
        except ValueError:
            # A code that cannot go into a token must not take the other properties down with it.
            log.error("property %r cannot be served: its code is not token-safe", prop["code"])
            entry.servable = False
            entry.offers_by_placement = {placement: [] for placement in PLACEMENTS}
        entry.serialised = {placement: _serialise(entry, placement) for placement in PLACEMENTS}
        result[prop["code"]] = entry
    return result


class Snapshot:
    """The app's offers snapshot: built lazily, marked stale by catalog_changed or by age."""

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

    def current(self, connect):
        """The snapshot; connect() gives a database connection, called only to rebuild."""
        if self._stale or self.clock() - self._built_at >= self.ttl_s:
            with self._lock:
                if self._stale or self.clock() - self._built_at >= self.ttl_s:
                    # Cleared before reading, so a change made during the build marks it stale again.
                    self._stale = False
                    config = self.app.config
                    try:
                        self._data = build(connect(), config["BASE_URL"], config["SECRET_KEY"],
                                           timeutil.iso_now(), int(time.time()))
                    except Exception:
                        self._stale = True      # the next request tries again
                        raise
                    self._built_at = self.clock()
        return self._data


def init_app(app):
    app.extensions["offers_snapshot"] = Snapshot(app, ttl_s=app.config.get("OFFERS_TTL_S", DEFAULT_TTL_S))


def offers_body(app, connect, property_code, placement=None, rng=random):
    """The /api/offers JSON body (bytes) for property_code, or None for an unknown property:
    {"delay_ms", "frequency", "offers": [offer without its priority, ...], "placement",
    "property", "theme"}, the offers in order_offers' order.

    connect() is only called when the snapshot must be rebuilt: most requests touch no database.
    """
    entry = app.extensions["offers_snapshot"].current(connect).get(property_code)
    if entry is None:
        return None
    placement = placement if placement in PLACEMENTS else entry.placement
    head, pieces, tail = entry.serialised[placement]
    ordered = order_offers(entry.offers_by_placement[placement], rng)
    return head + b",".join([pieces[offer["id"]] for offer in ordered]) + tail
