"""Properties JSON API: GET /api/properties, GET/PUT /api/properties/<code>.

Admin session (with the CSRF header on writes) or `Authorization: Bearer <token>`. Fields are
the contract's (DESIGN.md "Properties API") plus `max_offers`; `code` is fixed. PUT changes only
the fields it is given, audited like an admin edit; the change shows in /api/offers on the next
request. No SQL here.
"""
from flask import Blueprint, jsonify, request

from popup_mgr import properties as property_store
from popup_mgr.db import get_db
from popup_mgr.web.auth import api_auth_required, current_actor
from popup_mgr.web.http import json_body, json_error

bp = Blueprint("api_properties", __name__, url_prefix="/api")


def _not_found(code):
    return json_error(404, f"no property with code {code!r}")


@bp.get("/properties")
@api_auth_required
def list_properties():
    return jsonify({"properties": [property_store.api_json(prop)
                                   for prop in property_store.list_properties(get_db())]})


@bp.get("/properties/<code>")
@api_auth_required
def get_property(code):
    prop = property_store.get(get_db(), code)
    return jsonify(property_store.api_json(prop)) if prop else _not_found(code)


@bp.put("/properties/<code>")
@api_auth_required
def update_property(code):
    if property_store.get(get_db(), code) is None:
        return _not_found(code)
    data, error = json_body()
    if error:
        return error
    try:
        return jsonify(property_store.api_json(property_store.update(get_db(), code, data, current_actor())))
    except property_store.PropertyNotFound:
        return _not_found(code)
    except property_store.PropertyInvalid as exc:
        return json_error(422, "the property is not valid: see errors", exc.errors)
