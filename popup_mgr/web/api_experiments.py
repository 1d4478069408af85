"""Experiments JSON API (DESIGN.md "Experiments"): POST/GET /api/experiments,
GET /api/experiments/<id>, POST /api/experiments/<id>/stop.

Admin session (with the CSRF header on writes) or `Authorization: Bearer <token>`; errors in the
campaigns API's shape (422 {"error", "errors": {field: message}}). No SQL here.
"""
from flask import Blueprint, jsonify, request

from popup_mgr import experiments
from popup_mgr.db import get_db
from popup_mgr.web.auth import api_auth_required, current_actor
from popup_mgr.web.http import json_body, json_created, json_error

bp = Blueprint("api_experiments", __name__, url_prefix="/api")


def _invalid(errors):
    return json_error(422, "the experiment is not valid: see errors", errors)


def _not_found(experiment_id):
    return json_error(404, f"no experiment with id {experiment_id}")


@bp.get("/experiments")
@api_auth_required
def list_experiments():
    status = request.args.get("status")
    return jsonify({"experiments": experiments.list_experiments(
        get_db(), status if status in experiments.STATUSES else None)})


@bp.post("/experiments")
@api_auth_required
def create_experiment():
    data, error = json_body()
    if error:
        return error
    try:
        created = experiments.create(get_db(), data, current_actor())
    except experiments.ExperimentInvalid as exc:
        return _invalid(exc.errors)
    return json_created(created, f"/api/experiments/{created['id']}")


@bp.get("/experiments/<int:experiment_id>")
@api_auth_required
def get_experiment(experiment_id):
    experiment = experiments.get(get_db(), experiment_id)
    return jsonify(experiment) if experiment else _not_found(experiment_id)


@bp.post("/experiments/<int:experiment_id>/stop")
@api_auth_required
def stop_experiment(experiment_id):
    """Body optional: {"winner": "b"} applies arm b (see experiments.stop)."""
    data = {}
    if request.get_data():
        data, error = json_body()
        if error:
            return error
    if not isinstance(data, dict) or set(data) - {"winner"}:
        return _invalid({"_body": 'Send {"winner": "<arm key>"} or nothing.'})
    try:
        return jsonify(experiments.stop(get_db(), experiment_id, current_actor(), data.get("winner")))
    except experiments.ExperimentNotFound:
        return _not_found(experiment_id)
    except experiments.ExperimentInvalid as exc:
        return _invalid(exc.errors)
