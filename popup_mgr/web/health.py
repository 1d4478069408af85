"""GET /api/health: answers 200 when the database answers, 503 otherwise."""
import sqlite3

from flask import Blueprint, current_app, jsonify

from popup_mgr import db as database
from popup_mgr import operations
from popup_mgr.web.http import json_error

bp = Blueprint("health", __name__)


@bp.get("/api/health")
def health():
    try:
        version = database.health_check(database.get_db())
    except sqlite3.Error as exc:
        return json_error(503, "database unavailable",
                          extra={"status": "error", "database": "unavailable", "detail": type(exc).__name__})
    return jsonify({"status": "ok", "database": "ok", "schema_version": version,
                    **operations.health_fields(current_app.config)})
