"""GET /api/reconciliation?from=YYYY-MM-DD&to=YYYY-MM-DD: the reconciliation with Tune as JSON
(the contract's shape, DESIGN.md "Tune (HasOffers) sync and reconciliation").

Admin session or `Authorization: Bearer <token>`. A look changes nothing: the repair is the CLI's
`--apply` or the admin page's "apply". 422 for a bad range (the campaigns API's error shape), 503
when Tune is not connected or the network fails. No SQL here.
"""
from flask import Blueprint, current_app, jsonify, request

from popup_mgr import reconcile, tune_jobs
from popup_mgr.web.auth import api_auth_required
from popup_mgr.web.http import json_error

bp = Blueprint("api_tune", __name__, url_prefix="/api")


@bp.get("/reconciliation")
@api_auth_required
def reconciliation():
    try:
        first_day, last_day = reconcile.parse_range(request.args.get("from"), request.args.get("to"))
    except reconcile.RangeInvalid as exc:
        return json_error(422, "the range is not valid: see errors", exc.errors)
    try:
        done = tune_jobs.reconcile_days(current_app, first_day, last_day, record=False, **tune_jobs.INTERACTIVE)
    except tune_jobs.NotConfigured as exc:
        return json_error(503, str(exc))
    except tune_jobs.TuneError as exc:
        return json_error(503, f"Tune did not answer as expected: {exc.message}")
    response = jsonify(done["report"])
    response.headers["Cache-Control"] = "no-store"
    return response
