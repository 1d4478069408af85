"""GET /api/health: 200 while the database answers, 503 (with CORS, as JSON) when it does not."""
from popup_mgr import db as database


def test_health_ok_with_schema_version(app, client, db):
    codes = [r["code"] for r in db.execute("SELECT code FROM properties ORDER BY id")]
    assert codes == ["mff", "mmm", "mcad", "mmd"]            # init seeds the four properties
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json
    assert body["disk"]["free_bytes"] > 0 and body["wal"]["bytes"] >= 0
    assert body | {"disk": None, "wal": None} == {
        "status": "ok", "database": "ok", "schema_version": database.latest_version(),
        "last_backup": None, "last_backup_age_s": None, "problems": [],
        "wal": None, "disk": None, "writes": {"failed": 0, "window_s": 300}}
    assert not body["disk"]["low"] and not body["wal"]["stuck"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_health_503_when_the_database_cannot_be_opened(app, client, tmp_path):
    app.config["DATABASE"] = str(tmp_path / "no-such-directory" / "popup.db")
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json["status"] == "error"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
