"""Experiments JSON API (DESIGN.md "Contract, second stage", Experiments): 401 without auth, 201
with the contract's shape, 422 in the campaigns API's error shape with nothing stored, 404, stop."""
import json

import pytest

from tests.helpers import add_campaign, csrf_token

EXPERIMENT_KEYS = {"id", "name", "property", "metric", "status", "started_at", "stopped_at", "winner", "arms",
                   "results"}
ARM_KEYS = {"key", "campaign_id", "weight", "overrides", "visitors", "impressions", "clicks", "conversions",
            "revenue", "ctr", "rpm"}
RESULT_KEYS = {"arms", "srm", "days_left", "verdict"}


@pytest.fixture
def bearer(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def campaigns(db, app):
    return [add_campaign(db, title=f"Offer {n}", app=app) for n in range(5)]


def post(client, headers, body, path="/api/experiments"):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def stored(db):
    """Everything an experiment request may write (the audit rows of other changes, such as the
    test's API token, are not its doing)."""
    return [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("experiments", "experiment_arms", "audit_log WHERE action LIKE 'experiment.%'")]


def body(campaigns, **fields):
    return {"name": "Title test", "property": "mff",
            "arms": [{"campaign_id": campaigns[0], "weight": 50}, {"campaign_id": campaigns[1], "weight": 50}],
            **fields}


@pytest.mark.parametrize("method, path", [("get", "/api/experiments"), ("post", "/api/experiments"),
                                          ("get", "/api/experiments/1"), ("post", "/api/experiments/1/stop")])
def test_every_endpoint_needs_auth(client, db, campaigns, method, path):
    send = getattr(client, method)
    wrong = send(path, data=json.dumps(body(campaigns)), content_type="application/json",
                 headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and "error" in wrong.json
    # Without any credentials a write may be refused by the CSRF check first (400), as on the
    # campaigns API; either way nothing is stored.
    bare = send(path, data=json.dumps(body(campaigns)), content_type="application/json")
    assert bare.status_code == (401 if method == "get" else bare.status_code) and bare.status_code in (400, 401)
    assert stored(db) == [0, 0, 0]


def test_create_answers_201_with_the_contract_shape(client, db, bearer, campaigns):
    created = post(client, bearer, {**body(campaigns), "metric": "ctr",
                                    "arms": [{"campaign_id": campaigns[0], "weight": 30},
                                             {"campaign_id": campaigns[0], "weight": 70,
                                              "overrides": {"display_title": "Shorter"}}]})
    assert created.status_code == 201
    experiment = created.json
    assert EXPERIMENT_KEYS <= set(experiment)
    assert created.headers["Location"] == f"/api/experiments/{experiment['id']}"
    assert (experiment["name"], experiment["property"], experiment["metric"], experiment["status"]) == \
        ("Title test", "mff", "ctr", "running")
    assert experiment["stopped_at"] is None and experiment["winner"] is None
    assert [set(arm) >= ARM_KEYS for arm in experiment["arms"]] == [True, True]
    assert [(a["key"], a["weight"], a["overrides"]) for a in experiment["arms"]] == \
        [("a", 30, {}), ("b", 70, {"display_title": "Shorter"})]
    assert experiment["arms"][0]["revenue"] == "0.00" and experiment["arms"][0]["rpm"] == "0.00"
    assert set(experiment["results"]) >= RESULT_KEYS
    assert [r["key"] for r in experiment["results"]["arms"]] == ["b"]
    assert set(experiment["results"]["arms"][0]) >= {"key", "chance_to_win", "lift", "p_value"}
    assert set(experiment["results"]["srm"]) == {"p_value", "mismatch"}
    assert isinstance(experiment["results"]["verdict"], str) and experiment["results"]["verdict"]

    assert client.get(f"/api/experiments/{experiment['id']}", headers=bearer).json["arms"] == experiment["arms"]
    listed = client.get("/api/experiments", headers=bearer).json
    assert [e["id"] for e in listed["experiments"]] == [experiment["id"]]
    [(actor, action)] = db.execute("SELECT actor, action FROM audit_log WHERE entity = 'experiment'").fetchall()
    assert (actor, action) == ("token:tests", "experiment.create")


def test_four_arms_and_the_default_metric(client, bearer, campaigns):
    created = post(client, bearer, {"name": "Four", "property": "mmm",
                                    "arms": [{"campaign_id": c, "weight": 25} for c in campaigns[:4]]})
    assert created.status_code == 201
    assert [a["key"] for a in created.json["arms"]] == ["a", "b", "c", "d"] and created.json["metric"] == "rpm"


def arms_of(campaigns, *weights, same=False):
    return [{"campaign_id": campaigns[0 if same else i], "weight": w} for i, w in enumerate(weights)]


INVALID = [
    ("unknown property", lambda c: {**body(c), "property": "nope"}, "property"),
    ("no property", lambda c: {k: v for k, v in body(c).items() if k != "property"}, "property"),
    ("unknown campaign", lambda c: {**body(c), "arms": [{"campaign_id": 9999, "weight": 50},
                                                        {"campaign_id": c[1], "weight": 50}]}, "arms.0.campaign_id"),
    ("one arm", lambda c: {**body(c), "arms": arms_of(c, 100)}, "arms"),
    ("five arms", lambda c: {**body(c), "arms": arms_of(c, 20, 20, 20, 20, 20)}, "arms"),
    ("no arms", lambda c: {**body(c), "arms": []}, "arms"),
    ("arms not a list", lambda c: {**body(c), "arms": {"a": 1}}, "arms"),
    ("weights sum to 90", lambda c: {**body(c), "arms": arms_of(c, 45, 45)}, "arms"),
    ("weights sum to 110", lambda c: {**body(c), "arms": arms_of(c, 60, 50)}, "arms"),
    ("zero weight", lambda c: {**body(c), "arms": arms_of(c, 0, 100)}, "arms.0.weight"),
    ("fractional weight", lambda c: {**body(c), "arms": arms_of(c, 50.5, 49.5)}, "arms.0.weight"),
    ("weight as text", lambda c: {**body(c), "arms": arms_of(c, "50", 50)}, "arms.0.weight"),
    ("weight as boolean", lambda c: {**body(c), "arms": arms_of(c, True, 99)}, "arms.0.weight"),
    ("one weight left out", lambda c: {**body(c), "arms": [{"campaign_id": c[0]}, {"campaign_id": c[1], "weight": 50}]},
     "arms.0.weight"),
    ("same campaign twice", lambda c: {**body(c), "arms": arms_of(c, 50, 50, same=True)}, "arms.1.overrides"),
    ("same campaign, same overrides", lambda c: {**body(c), "arms": [
        {"campaign_id": c[0], "weight": 50, "overrides": {"display_title": "X"}},
        {"campaign_id": c[0], "weight": 50, "overrides": {"display_title": "X"}}]}, "arms.1.overrides"),
    ("unknown override field", lambda c: {**body(c), "arms": [
        {"campaign_id": c[0], "weight": 50}, {"campaign_id": c[0], "weight": 50, "overrides": {"click_url": "https://x.example"}}]},
     "arms.1.overrides"),
    ("bad override value", lambda c: {**body(c), "arms": [
        {"campaign_id": c[0], "weight": 50}, {"campaign_id": c[0], "weight": 50, "overrides": {"image_url": "javascript:x"}}]},
     "arms.1.overrides"),
    ("empty title override", lambda c: {**body(c), "arms": [
        {"campaign_id": c[0], "weight": 50}, {"campaign_id": c[0], "weight": 50, "overrides": {"display_title": " "}}]},
     "arms.1.overrides"),
    ("unknown metric", lambda c: {**body(c), "metric": "revenue"}, "metric"),
    ("unknown field", lambda c: {**body(c), "colour": "red"}, "colour"),
    ("name not text", lambda c: {**body(c), "name": 5}, "name"),
]


@pytest.mark.parametrize("label, make, field", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_input_is_422_and_stores_nothing(client, db, bearer, campaigns, label, make, field):
    answer = post(client, bearer, make(campaigns))
    assert answer.status_code == 422, answer.json
    assert answer.json["error"] and field in answer.json["errors"], answer.json
    assert stored(db) == [0, 0, 0]


def test_a_campaign_not_running_on_the_property_is_422(client, db, bearer, app, campaigns):
    elsewhere = add_campaign(db, title="Only on mmm", properties=("mmm",), app=app)
    answer = post(client, bearer, {**body(campaigns), "arms": [{"campaign_id": elsewhere, "weight": 50},
                                                               {"campaign_id": campaigns[1], "weight": 50}]})
    assert answer.status_code == 422 and "arms.0.campaign_id" in answer.json["errors"]
    assert stored(db) == [0, 0, 0]


def test_a_second_running_experiment_on_the_property_is_422_until_the_first_stops(client, db, bearer, campaigns):
    first = post(client, bearer, body(campaigns)).json
    before = stored(db)
    second = post(client, bearer, body(campaigns[2:]))
    assert second.status_code == 422 and "property" in second.json["errors"]
    assert stored(db) == before
    assert post(client, bearer, {**body(campaigns[2:]), "property": "mmm"}).status_code == 201   # another property
    assert client.post(f"/api/experiments/{first['id']}/stop", headers=bearer).status_code == 200
    assert post(client, bearer, body(campaigns[2:])).status_code == 201


def test_bodies_that_are_not_json(client, db, bearer):
    assert client.post("/api/experiments", data="name=x", headers=bearer).status_code == 400
    assert client.post("/api/experiments", data="{", content_type="application/json", headers=bearer).status_code == 400
    assert post(client, bearer, ["not", "an", "object"]).status_code == 422
    assert stored(db) == [0, 0, 0]


def test_unknown_experiment_is_404(client, bearer):
    assert client.get("/api/experiments/42", headers=bearer).status_code == 404
    assert client.post("/api/experiments/42/stop", headers=bearer).status_code == 404


def test_stop_with_a_winner(client, db, bearer, campaigns):
    experiment = post(client, bearer, {**body(campaigns), "arms": [
        {"campaign_id": campaigns[0], "weight": 50},
        {"campaign_id": campaigns[0], "weight": 50, "overrides": {"display_title": "Better title"}}]}).json
    stopped = post(client, bearer, {"winner": "b"}, f"/api/experiments/{experiment['id']}/stop")
    assert stopped.status_code == 200
    assert (stopped.json["status"], stopped.json["winner"]) == ("stopped", "b") and stopped.json["stopped_at"]
    assert client.get(f"/api/campaigns/{campaigns[0]}", headers=bearer).json["display_title"] == "Better title"
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log WHERE action LIKE 'experiment.%' ORDER BY id")]
    assert actions == ["experiment.create", "experiment.stop", "experiment.apply"]
    again = post(client, bearer, {"winner": "b"}, f"/api/experiments/{experiment['id']}/stop")
    assert again.status_code == 422 and "status" in again.json["errors"]


@pytest.mark.parametrize("stop_body, field", [({"winner": "z"}, "winner"), ({"winner": 1}, "winner"),
                                              ({"loser": "a"}, "_body")])
def test_stop_with_a_bad_body_is_422_and_changes_nothing(client, db, bearer, campaigns, stop_body, field):
    experiment = post(client, bearer, body(campaigns)).json
    before = stored(db)
    answer = post(client, bearer, stop_body, f"/api/experiments/{experiment['id']}/stop")
    assert answer.status_code == 422 and field in answer.json["errors"]
    assert stored(db) == before
    assert client.get(f"/api/experiments/{experiment['id']}", headers=bearer).json["status"] == "running"


def test_admin_session_needs_the_csrf_header(admin_client, db, campaigns):
    without = post(admin_client, {}, body(campaigns))
    assert without.status_code == 400 and stored(db) == [0, 0, 0]
    token = csrf_token(admin_client, "/admin/campaigns")
    created = post(admin_client, {"X-CSRFToken": token}, body(campaigns))
    assert created.status_code == 201 and created.json["name"] == "Title test"
    assert db.execute("SELECT actor FROM audit_log WHERE entity = 'experiment'").fetchone()[0] == "mike"


def test_money_is_decimal_strings_and_rates_are_fractions(client, db, bearer, app, campaigns):
    from tests.test_experiments import backdate, visit
    experiment = post(client, bearer, body(campaigns)).json
    t0 = backdate(db, experiment) + 1000
    for i in range(10):
        visit(db, "mff", campaigns[0], "a", f"sess-a-{i}", t0 + i, clicked=i < 4, payout_cents=1250 if i < 2 else None)
        visit(db, "mff", campaigns[1], "b", f"sess-b-{i}", t0 + i, clicked=i < 1)
    arms = client.get(f"/api/experiments/{experiment['id']}", headers=bearer).json["arms"]
    assert (arms[0]["visitors"], arms[0]["impressions"], arms[0]["clicks"], arms[0]["conversions"]) == (10, 10, 4, 2)
    assert (arms[0]["revenue"], arms[0]["rpm"], arms[0]["ctr"]) == ("25.00", "2500.00", 0.4)
    assert (arms[1]["revenue"], arms[1]["rpm"], arms[1]["ctr"]) == ("0.00", "0.00", 0.1)



def test_results_read_the_arms_index(db, client, bearer, campaigns):
    """The per-arm counts read only the experiment's own rows (partial, covering indexes), not
    every impression of the period: the admin's card stays quick on a busy box."""
    from popup_mgr import experiments
    experiment = post(client, bearer, body(campaigns)).json
    statements = []
    db.set_trace_callback(statements.append)
    experiments.get(db, experiment["id"])
    db.set_trace_callback(None)
    for label, index in (("experiments.impression_counts", "impressions_arms"),
                         ("experiments.click_counts", "clicks_arms")):
        [query] = [sql for sql in statements if label in sql]
        plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + query))
        assert f"COVERING INDEX {index}" in plan, plan
