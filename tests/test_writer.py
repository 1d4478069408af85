"""Ingest exactness: concurrency with replays, group commit behaviour, timeouts, verify."""
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from popup_mgr import db as database
from popup_mgr.ingest import beacons
from popup_mgr.ingest import state as ingest
from popup_mgr.ingest.errors import IngestUnavailable
from tests.helpers import (BOT_UA, BROWSER_UA, add_campaign, all_differences, beacon_body, count,
                              new_event_id, stats, token_for)


@pytest.fixture
def tokens(app, db):
    """Tokens over two campaigns, two properties and an A/B variant."""
    first, second = add_campaign(db, app=app), add_campaign(db, click_url="http://localhost:9/x", app=app)
    return [token_for(app, first, "mff"), token_for(app, first, "mmm", variant="A"),
            token_for(app, second, "mff", "exit-intent", "B")]


def test_concurrent_events_with_replays_are_counted_exactly(app, db, tokens):
    """8 threads send 3,000 beacons (impressions and clicks, humans and bots), a quarter of them
    replays of earlier event ids, interleaved: every count is exact and rollups equal the ledger."""
    rng = random.Random(4)
    events = [(rng.choice(("/api/impression", "/api/click")), rng.choice(tokens), new_event_id(),
               rng.choice((BROWSER_UA, BROWSER_UA, BOT_UA))) for _ in range(2400)]
    sends = events + [rng.choice(events) for _ in range(600)]
    rng.shuffle(sends)

    def send(chunk):
        client = app.test_client()
        return [client.post(path, data=beacon_body(token, event_id), headers={"User-Agent": ua}).status_code
                for path, token, event_id, ua in chunk]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for chunk in pool.map(send, [sends[i::8] for i in range(8)]) for s in chunk]
    assert set(statuses) <= {200, 204} and len(statuses) == 3000
    expected = {(path, ua == BOT_UA) for path, _, _, ua in events}
    by_kind = {key: sum(1 for p, _, _, ua in events if (p, ua == BOT_UA) == key) for key in expected}
    got = stats(db)
    assert got["impressions"] == by_kind.get(("/api/impression", False), 0)
    assert got["bot_impressions"] == by_kind.get(("/api/impression", True), 0)
    assert got["clicks"] == by_kind.get(("/api/click", False), 0)
    assert got["bot_clicks"] == by_kind.get(("/api/click", True), 0)
    assert count(db, "impressions") + count(db, "clicks") == 2400
    assert all_differences(db) == []


def test_one_failing_event_does_not_fail_its_batch(app, db, tokens):
    """An event that violates a constraint is refused alone; the others in its batch commit."""
    writer = ingest.of(app).writer
    good = [("impression", _row(db, new_event_id())) for _ in range(40)]
    bad = ("impression", _row(db, new_event_id(), campaign_id=987654))    # no such campaign (FK)
    results = {}

    def submit(event):
        try:
            results[event[1]["event_id"]] = writer.submit(event)
        except IngestUnavailable as exc:
            results[event[1]["event_id"]] = exc

    threads = [threading.Thread(target=submit, args=(e,)) for e in good + [bad]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(results[bad[1]["event_id"]], IngestUnavailable)
    assert all(results[e[1]["event_id"]] is True for e in good)
    assert count(db, "impressions") == 40 and all_differences(db) == []


def _row(db, event_id, campaign_id=None):
    campaign_id = campaign_id or db.execute("SELECT min(id) FROM campaigns").fetchone()[0]
    return {"event_id": event_id, "ts": 1_795_500_000_000, "day": "2026-11-24", "campaign_id": campaign_id,
            "property_id": 1, "placement": "thankyou", "variant": "", "session_id": None,
            "visitor_hash": None, "is_bot": 0, "is_view": 0}


def test_a_locked_database_answers_503_and_the_retry_counts_once(app, client, db, tokens, monkeypatch):
    monkeypatch.setattr(ingest.of(app).writer, "timeout_s", 0.3)
    body = beacon_body(tokens[0], "retry-event-1")
    # A first event makes the day's salt and the catalog snapshot; then only the writer waits.
    client.post("/api/impression", data=beacon_body(tokens[0]), headers={"User-Agent": BROWSER_UA})
    blocker = database.connect(app.config["DATABASE"])
    blocker.execute("BEGIN IMMEDIATE")            # another writer holds the lock
    try:
        response = client.post("/api/impression", data=body, headers={"User-Agent": BROWSER_UA})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    monkeypatch.setattr(ingest.of(app).writer, "timeout_s", 10)
    for _ in range(2):      # the browser retries; the event may already be in from the first try
        assert client.post("/api/impression", data=body, headers={"User-Agent": BROWSER_UA}).status_code == 204
    assert count(db, "impressions", "event_id = 'retry-event-1'") == 1 and all_differences(db) == []


def test_a_locked_database_still_redirects_the_click_with_the_queued_click_id(app, client, db, tokens, monkeypatch):
    client.get(f"/c/{tokens[0]}", headers={"User-Agent": BROWSER_UA})   # salt and catalog ready
    monkeypatch.setattr(ingest.of(app).writer, "timeout_s", 0.3)
    blocker = database.connect(app.config["DATABASE"])
    blocker.execute("BEGIN IMMEDIATE")
    try:
        response = client.get(f"/c/{tokens[0]}?e=locked-click-1", headers={"User-Agent": BROWSER_UA})
        assert response.status_code == 302
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    ingest.stop(app)        # let the queued click land
    stored = db.execute("SELECT click_id FROM clicks WHERE event_id = 'locked-click-1'").fetchone()
    assert stored and f"aff_click_id={stored[0]}&" in response.headers["Location"]
    assert all_differences(db) == []


def test_writer_stops_cleanly_and_commits_what_was_queued(app, db, tokens):
    assert beacons.record_impression(app, beacons.Beacon(tokens[0], new_event_id()),
                                      beacons.Visitor("127.0.0.1", BROWSER_UA)) is True
    ingest.stop(app)
    assert count(db, "impressions") == 1
    with pytest.raises(IngestUnavailable):
        beacons.record_impression(app, beacons.Beacon(tokens[0], new_event_id()),
                                   beacons.Visitor("127.0.0.1", BROWSER_UA))


# --- verify --------------------------------------------------------------------------------------------

def test_verify_passes_on_an_empty_database(runner):
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0 and "nothing to compare" in result.output


def test_verify_passes_then_reports_a_tampered_rollup(app, client, db, runner, tokens):
    for token in tokens:
        client.post("/api/impression", data=beacon_body(token), headers={"User-Agent": BROWSER_UA})
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0 and "equals the ledger" in result.output
    db.execute("UPDATE daily_stats SET impressions = impressions + 1 WHERE variant = 'A'")
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 1
    assert "2 difference(s)" in result.output and "impressions=2" in result.output
    day = db.execute("SELECT day FROM daily_stats LIMIT 1").fetchone()[0]
    assert runner.invoke(args=["verify", "--from", "2001-01-01", "--to", "2001-01-02"]).exit_code == 0
    assert runner.invoke(args=["verify", "--from", day, "--to", day]).exit_code == 1
    assert runner.invoke(args=["verify", "--from", "yesterday"]).exit_code == 2
    assert runner.invoke(args=["verify", "--from", "2030-01-02", "--to", "2030-01-01"]).exit_code == 2


# --- fuzzing: no input makes a 5xx ------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=12)
beacon_bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"token": st.text(max_size=220) | json_values, "event_id": st.text(max_size=70) | json_values},
                          optional={"session_id": st.text(max_size=70) | json_values}).map(lambda v: json.dumps(v).encode()),
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(body=beacon_bodies, path=st.sampled_from(["/api/impression", "/api/click"]),
       content_type=st.sampled_from(["text/plain", "application/json", "application/x-www-form-urlencoded", ""]))
def test_fuzzed_beacons_never_get_a_5xx(fuzz_app, body, path, content_type):
    client, db = fuzz_app
    response = client.post(path, data=body, headers={"Content-Type": content_type, "User-Agent": BROWSER_UA})
    # A form body is no beacon, whatever it holds (415); text and JSON bodies are parsed.
    expected = {415} if content_type == "application/x-www-form-urlencoded" else {400, 413}
    assert response.status_code in expected, response.data
    assert response.headers["Access-Control-Allow-Origin"] == "*"


postback_params = st.dictionaries(
    st.sampled_from(["click_id", "transaction_id", "payout", "status", "secret", "test", "other"]),
    st.text(max_size=40) | st.sampled_from(["4.50", "0", "-1", "NaN", "1e9", "approved", "rejected",
                                            "postback-test-secret", "4,50", "99999999999"]),
    max_size=7)


@FUZZ
@given(params=postback_params, method=st.sampled_from(["GET", "POST"]))
def test_fuzzed_postbacks_never_get_a_5xx(fuzz_app, params, method):
    client, db = fuzz_app
    params = {"secret": "postback-test-secret"} | params
    if method == "GET":
        response = client.get("/api/postback", query_string=params)
    else:
        response = client.post("/api/postback", data=params)
    assert response.status_code in (200, 400, 403), response.data
    if response.status_code != 200:
        assert response.headers["X-Popup-Reason"]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from popup_mgr import create_app
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path_factory.mktemp("fuzz") / "popup.db"),
                      "SECRET_KEY": "fuzz-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
                      "POSTBACK_SECRET": "postback-test-secret"})
    db = database.connect(app.config["DATABASE"])
    yield app.test_client(), db
    assert all_differences(db) == []
    db.close()


def test_sustained_ingest_keeps_the_wal_bounded(app, db, tokens):
    """Thousands of separate commits: the WAL is checkpointed and restarted as it goes (a writer
    that never lets a checkpoint finish grows popup.db-wal without bound, gigabytes in a soak)."""
    import os
    client = app.test_client()
    for _ in range(3000):
        assert client.post("/api/impression", data=beacon_body(tokens[0], new_event_id()),
                           headers={"User-Agent": BROWSER_UA}).status_code == 204
    wal = app.config["DATABASE"] + "-wal"
    # Default automatic checkpoints every 1,000 pages keep it near 4 MB; 3,000 commits without a
    # restart would leave well over 16 MB.
    assert os.path.getsize(wal) < 16 * 1024 * 1024
    assert count(db, "impressions") == 3000

