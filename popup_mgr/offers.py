"""The offers a popup shows: the body of `GET /api/offers/<property>`.

The catalog (catalog.py) holds each property's servable offers, signed and serialised once per
snapshot; per request only the order is chosen, by `rotation.order` in the property's rotation
mode, the list is cut at the property's max_offers, and the pre-serialised pieces are joined.
"""
import random

from popup_mgr import catalog, experiment_serving, rotation
from popup_mgr.properties import PLACEMENTS


def offers_body(app, property_code, placement=None, rng=random, sid=None):
    """The /api/offers JSON body (bytes) for property_code, or None for an unknown property:
    {"delay_ms", "frequency", "offers": [offer without its priority, ...], "placement",
    "property", "theme"}, at most max_offers offers in the property's rotation order; with a
    running experiment on the property, the visitor's arm (by `sid`, a valid session id or None)
    comes first and the other arms' campaigns not at all (experiment_serving.py). Touches no
    database while the catalog's snapshot is fresh."""
    snapshot = catalog.of(app).current()
    entry = snapshot.properties.get(property_code)
    if entry is None:
        return None
    placement = placement if placement in PLACEMENTS else entry.placement
    head, pieces, tail = entry.serialised[placement]
    ordered = rotation.order(app, entry, entry.offers_by_placement[placement], rng)
    running = snapshot.experiments.get(property_code)
    if running is not None and entry.servable:
        body = experiment_serving.arm_first(running, placement, sid, ordered, pieces, rng)
    else:
        body = [pieces[offer["id"]] for offer in ordered]
    return head + b",".join(body[:entry.max_offers]) + tail
