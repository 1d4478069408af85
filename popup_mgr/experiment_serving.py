"""Running experiments in the offers answer: each visitor's arm first, the other arms left out.

The catalog's snapshot holds, per property with a running experiment, each arm's offer already
signed with the arm key as its token's variant (so beacons and conversions name the arm) and
serialised with its overrides applied; a request only picks the arm (experiments.arm_for on the
visitor's sid, no query) and puts that piece first. Offers outside the experiment follow in the
property's rotation. Without a (valid) sid every answer draws an arm afresh in the proportions of
the weights, as DESIGN.md says.
"""
import json
from dataclasses import dataclass

from popup_mgr import experiments
from popup_mgr.urls import is_http_url

# Campaign creative field -> key of the offer JSON it is shown as.
OFFER_KEYS = {"display_title": "title", "tagline": "tagline", "description": "description",
              "cta_text": "cta_text", "image_url": "image_url"}


@dataclass(frozen=True)
class RunningExperiment:
    id: int
    arms: tuple                 # ({"key", "weight", "campaign_id"}, ...) in key order
    campaign_ids: frozenset     # every arm's campaign: none of them is served outside its arm
    pieces: dict                # placement -> {arm key: offer JSON}; no entry while not servable


def with_overrides(offer, overrides):
    """The offer as the arm shows it."""
    shown = dict(offer)
    for field, value in overrides.items():
        if field in OFFER_KEYS and (field != "image_url" or not value or is_http_url(value)):
            shown[OFFER_KEYS[field]] = value
    return shown


def build(db, servable_rows, placements, make_offer, to_json):
    """{property code: RunningExperiment} for the snapshot.

    servable_rows: the campaign rows the catalog serves now; make_offer(row, property_code,
    placement, variant) -> offer dict (signed); to_json(offer) -> the bytes the answer carries.
    """
    servable = {row["id"]: row for row in servable_rows}
    grouped = {}
    for row in experiments.running_arm_rows(db):
        grouped.setdefault((row["property"], row["id"]), []).append(row)
    running = {}
    for (code, experiment_id), arms in grouped.items():
        pieces = {placement: {} for placement in placements}
        for arm in arms:
            campaign = servable.get(arm["campaign_id"])
            if campaign is None:
                continue            # paused, held or out of schedule: its visitors get the rest
            overrides = json.loads(arm["overrides"] or "{}")
            try:
                for placement in placements:
                    offer = with_overrides(make_offer(campaign, code, placement, arm["key"]), overrides)
                    pieces[placement][arm["key"]] = to_json(
                        {key: value for key, value in offer.items() if key != "priority"})
            except ValueError:
                continue            # a code that cannot go into a token: the catalog logs it
        running[code] = RunningExperiment(
            experiment_id,
            tuple({"key": a["key"], "weight": a["weight"], "campaign_id": a["campaign_id"]} for a in arms),
            frozenset(a["campaign_id"] for a in arms), pieces)
    return running


def arm_key(running, sid, rng):
    """The visitor's arm: fixed by the sid, or drawn by weight when there is no valid sid."""
    experiment = {"id": running.id, "arms": running.arms}
    if sid is not None:
        return experiments.arm_for(experiment, sid)
    return rng.choices([arm["key"] for arm in running.arms],
                       weights=[arm["weight"] for arm in running.arms])[0]


def arm_first(running, placement, sid, ordered, pieces, rng):
    """The answer's offer pieces: the arm's offer, then the ordered offers outside the experiment."""
    rest = [pieces[offer["id"]] for offer in ordered if offer["id"] not in running.campaign_ids]
    arm = running.pieces.get(placement, {}).get(arm_key(running, sid, rng))
    return ([arm] if arm is not None else []) + rest
