from popup_mgr import db as database


def test_init_creates_properties_and_health(app, client, db):
    codes = [r["code"] for r in db.execute("SELECT code FROM properties ORDER BY id")]
    assert codes == ["mff", "mmm", "mcad", "mmd"]
    assert database.schema_version(db) == database.latest_version()
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json["status"] == "ok"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
