"""The offers a popup shows: their order (rotation) and the body of `GET /api/offers/<property>`.

The catalog (catalog.py) holds each property's servable offers, signed and serialised once per
snapshot; per request only the order is chosen, by `order_offers`, the one place rotation lives,
and the pre-serialised pieces are joined in that order.
"""
import random

from popup_mgr import catalog, experiment_serving
from popup_mgr.properties import PLACEMENTS


def order_offers(offers, rng):
    """The order to show offers in: priority-weighted random without replacement.

    Each next slot is drawn among the remaining offers with probability proportional to their
    priority (1-10), so a priority-10 offer comes first ten times as often as a priority-1 one
    next to it, and every offer still gets shown sometimes.
    """
    # Efraimidis-Spirakis: sorting by u ** (1 / w) is exactly sequential weighted sampling.
    return sorted(offers, key=lambda offer: rng.random() ** (1.0 / max(1, offer["priority"])),
                  reverse=True)


def offers_body(app, property_code, placement=None, rng=random, sid=None):
    """The /api/offers JSON body (bytes) for property_code, or None for an unknown property:
    {"delay_ms", "frequency", "offers": [offer without its priority, ...], "placement",
    "property", "theme"}, the offers in order_offers' order; with a running experiment on the
    property, the visitor's arm (by `sid`, a valid session id or None) comes first instead
    (experiment_serving.py). Touches no database while the catalog's snapshot is fresh."""
    snapshot = catalog.of(app).current()
    entry = snapshot.properties.get(property_code)
    if entry is None:
        return None
    placement = placement if placement in PLACEMENTS else entry.placement
    head, pieces, tail = entry.serialised[placement]
    ordered = order_offers(entry.offers_by_placement[placement], rng)
    body = [pieces[offer["id"]] for offer in ordered]
    running = snapshot.experiments.get(property_code)
    if running is not None and entry.servable:
        body = experiment_serving.arm_first(running, placement, sid, ordered, pieces, rng)
    return head + b",".join(body) + tail
