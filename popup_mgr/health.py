"""GET /api/health: answers 200 when the database answers, 503 otherwise."""
import sqlite3

from flask import Blueprint, jsonify

from popup_mgr import db as database

bp = Blueprint("health", __name__)


@bp.get("/api/health")
def health():
    try:
        version = database.schema_version(database.get_db())
        database.get_db().execute("/* health.health */ SELECT count(*) FROM properties").fetchone()
    except sqlite3.Error as exc:
        response = jsonify({"status": "error", "database": "unavailable", "detail": type(exc).__name__})
        response.status_code = 503
        return response
    return jsonify({"status": "ok", "database": "ok", "schema_version": version})
