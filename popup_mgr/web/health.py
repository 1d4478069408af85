"""GET /api/health: 200 "ok" when the database answers and its storage is healthy; 503
"degraded" when it answers but writes are being refused, the disk is nearly full or the WAL
grows behind a stuck reader; 503 "error" when it does not answer."""
import sqlite3

from flask import Blueprint, current_app, jsonify

from popup_mgr import db as database
from popup_mgr import operations, storage
from popup_mgr.ingest import state as ingest
from popup_mgr.web.http import json_error

bp = Blueprint("health", __name__)


@bp.get("/api/health")
def health():
    try:
        version = database.health_check(database.get_db())
    except sqlite3.Error as exc:
        return json_error(503, "database unavailable",
                          extra={"status": "error", "database": "unavailable", "detail": type(exc).__name__})
    degraded, fields = storage.health(current_app.config, ingest.of(current_app).failures)
    response = jsonify({"status": "degraded" if degraded else "ok", "database": "ok", "schema_version": version,
                        **fields, **operations.health_fields(current_app.config)})
    if degraded:
        response.status_code = 503
        response.headers["Retry-After"] = "30"
    return response
