"""Campaign JSON API: GET/POST /api/campaigns, GET/PUT/DELETE /api/campaigns/<id>.

Admin session (with the CSRF header on writes) or `Authorization: Bearer <token>`. Field names
and shapes are the public contract in DESIGN.md ("Campaign JSON"). No SQL here.
"""
from flask import Blueprint, jsonify, request

from popup_mgr import campaigns as campaign_store
from popup_mgr.web.auth import api_auth_required, current_actor
from popup_mgr.db import get_db
from popup_mgr.web.http import json_body, json_created, json_error

bp = Blueprint("api_campaigns", __name__, url_prefix="/api")


def _invalid(errors):
    return json_error(422, "the campaign is not valid: see errors", errors)


def _not_found(campaign_id):
    return json_error(404, f"no campaign with id {campaign_id}")


@bp.get("/campaigns")
@api_auth_required
def list_campaigns():
    status = request.args.get("status")
    return jsonify({"campaigns": campaign_store.list_campaigns(
        get_db(), status=status if status in campaign_store.STATUSES else None,
        property_code=request.args.get("property") or None)})


@bp.post("/campaigns")
@api_auth_required
def create_campaign():
    data, error = json_body()
    if error:
        return error
    try:
        created = campaign_store.create(get_db(), data, current_actor())
    except campaign_store.CampaignInvalid as exc:
        return _invalid(exc.errors)
    return json_created(created, f"/api/campaigns/{created['id']}")


@bp.get("/campaigns/<int:campaign_id>")
@api_auth_required
def get_campaign(campaign_id):
    campaign = campaign_store.get(get_db(), campaign_id)
    return jsonify(campaign) if campaign else _not_found(campaign_id)


@bp.put("/campaigns/<int:campaign_id>")
@api_auth_required
def update_campaign(campaign_id):
    if campaign_store.get(get_db(), campaign_id) is None:
        return _not_found(campaign_id)
    data, error = json_body()
    if error:
        return error
    try:
        return jsonify(campaign_store.update(get_db(), campaign_id, data, current_actor()))
    except campaign_store.CampaignNotFound:
        return _not_found(campaign_id)
    except campaign_store.CampaignInvalid as exc:
        return _invalid(exc.errors)


@bp.delete("/campaigns/<int:campaign_id>")
@api_auth_required
def delete_campaign(campaign_id):
    """Deactivates: the campaign stops showing; it and its history are kept."""
    try:
        return jsonify(campaign_store.deactivate(get_db(), campaign_id, current_actor()))
    except campaign_store.CampaignNotFound:
        return _not_found(campaign_id)
    except campaign_store.CampaignInvalid as exc:
        return _invalid(exc.errors)
