"""The one-call entry points the CLI, the admin and the server's schedule use, on the app's own
database and settings, against the stand-in network."""
import datetime as dt
import logging

import pytest

from popup_mgr import tune_jobs, tune_settings
from popup_mgr import db as database
from tests.tune_standin import API_KEY, NETWORK_ID


@pytest.fixture
def connected(app, tune):
    tune_jobs.save_settings(app, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url=tune.url,
                            tz="America/New_York")
    return app


def test_nothing_is_sent_before_tune_is_configured(app, tune):
    assert tune_jobs.test_connection(app) == (False, "Tune is not connected: set the network id and the API key.")
    with pytest.raises(tune_jobs.NotConfigured):
        tune_jobs.sync_now(app)
    with pytest.raises(tune_jobs.NotConfigured):
        tune_jobs.reconcile_days(app, "2026-11-20", "2026-11-20")
    assert tune.calls == []


def test_a_changed_app_secret_is_reported_and_nothing_is_sent(connected, tune):
    connected.config["SECRET_KEY"] = "a-completely-different-app-secret-0123456789"
    ok, message = tune_jobs.test_connection(connected)
    assert not ok and message == tune_settings.KEY_UNREADABLE and tune.calls == []


def test_sync_and_reconcile_through_the_app(connected, tune, caplog):
    caplog.set_level(logging.DEBUG)
    tune.add_offer(1001, cap=1)
    tune.add_conversion("tx-1", 1001, "2026-11-20 12:00:00", click_id="no-such-click")
    tune.add_stat("2026-11-20", 1001, clicks=3, conversions=1, payout="4.50")

    assert tune_jobs.test_connection(connected) == (True, f"Connected to network {NETWORK_ID}. 1 approved offer.")
    tune.fail_next("rate_limit", method="findMyApprovedOffers")       # retried by the sync
    result = tune_jobs.sync_now(connected, actor="mike", backoff_s=0)
    done = tune_jobs.reconcile_days(connected, "2026-11-20", "2026-11-20", apply=True, actor="mike")
    again = tune_jobs.reconcile_days(connected, "2026-11-20", "2026-11-20", apply=True, actor="mike")

    assert len(result.created) == 1
    assert [c["transaction_id"] for c in done["report"]["missing_in_ours"]] == ["tx-1"]
    assert done["applied"] == {"recorded": ["tx-1"], "updated": [], "unchanged": 0}
    assert done["after"]["missing_in_ours"] == [] and again["applied"]["recorded"] == []
    last = tune_jobs.last_results(connected)
    assert last["last_sync"]["outcome"] == "ok" and last["pending_review"][0]["tune_campaign_id"] == 1001
    assert last["last_reconciliation"]["missing_in_ours"] == 0
    assert last["reconciliation_sentence"] == "Tune and we recorded the same revenue for 2026-11-20."
    # Nothing we log carries the key (the stand-in's own access log is the network's, not ours).
    assert API_KEY not in "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")


def test_yesterday_is_the_networks_yesterday(connected):
    # 03:00 UTC on the 21st is still the 20th in New York.
    assert tune_jobs.yesterday(connected, dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.timezone.utc)) == "2026-11-19"


def hold_sync_lease(app, holder):
    """Take the Tune sync's lease as another process would (its own connection)."""
    from popup_mgr import leases, tune_sync
    conn = database.connect(app.config["DATABASE"])
    try:
        assert leases.acquire(conn, tune_sync.LEASE_NAME, holder, 60)
    finally:
        conn.close()


def test_the_sync_lease_is_shared_with_other_processes(connected, tune):
    hold_sync_lease(connected, "server-process")
    with pytest.raises(tune_jobs.tune_sync.SyncBusy):
        tune_jobs.sync_now(connected)


# --- the scheduler's entry points -------------------------------------------------------------------

def test_scheduled_jobs_do_nothing_and_say_so_before_tune_is_set_up(app, tune):
    assert tune_jobs.scheduled_sync(app.config) == \
        "Tune is not connected: set the network id and the API key; nothing to do."
    assert tune_jobs.scheduled_reconcile(app.config).endswith("; nothing to do.")
    assert tune.calls == []


def test_scheduled_jobs_raise_when_the_saved_key_cannot_be_read(connected, tune):
    config = dict(connected.config, SECRET_KEY="a-completely-different-app-secret-0123456789")
    for job in (tune_jobs.scheduled_sync, tune_jobs.scheduled_reconcile):
        with pytest.raises(tune_jobs.NotConfigured, match="Enter the API key again"):
            job(config)
    assert tune.calls == []


def test_scheduled_sync_returns_one_line_and_raises_on_failure(connected, tune):
    from popup_mgr import signals
    tune.add_offer(1001)
    rebuilt = []
    signals.catalog_changed.connect(rebuilt.append, sender=connected, weak=False)
    try:
        assert tune_jobs.scheduled_sync(connected.config, connected) == \
            "Tune sync: 1 created, 0 updated, 0 held, 0 released, 0 unchanged."
    finally:
        signals.catalog_changed.disconnect(rebuilt.append, sender=connected)
    assert rebuilt == [connected]                  # the offers snapshot is rebuilt at once
    tune.fail_next("error", method="findMyApprovedOffers", detail="Service unavailable")
    with pytest.raises(tune_jobs.TuneError, match="Service unavailable"):
        tune_jobs.scheduled_sync(connected.config)
    assert tune_jobs.last_results(connected)["last_sync"]["outcome"] == "error"


def test_scheduled_sync_skips_while_another_run_holds_the_lease(connected, tune):
    hold_sync_lease(connected, "the-cli")
    assert tune_jobs.scheduled_sync(connected.config) == \
        "Tune sync skipped: another Tune sync is running; try again when it has finished."
    assert tune.calls == []


def test_a_sync_started_during_the_scheduled_sync_is_refused(connected, tune, monkeypatch):
    """The server's tune-sync job holds its job lease (job:tune-sync) and the sync it runs takes
    tune_sync's own lease, as every sync does whoever starts it: Sync now (page, CLI or API)
    while the scheduled run is working is refused instead of running alongside."""
    from popup_mgr import operations, tune_sync
    from popup_mgr.scheduler import Scheduler
    tune.add_offer(1001)
    meanwhile, real_run = [], tune_sync._run

    def run_while_mike_presses_sync_now(*args, **kwargs):
        try:
            tune_jobs.sync_now(connected, actor="mike")
            meanwhile.append("ran alongside")
        except tune_sync.SyncBusy:
            meanwhile.append("refused")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(tune_sync, "_run", run_while_mike_presses_sync_now)
    scheduler = Scheduler(connected.config["DATABASE"])
    scheduler.add(operations.TUNE_SYNC_JOB, 900, lambda: tune_jobs.scheduled_sync(connected.config))
    [result] = scheduler.run_pending()
    assert meanwhile == ["refused"]
    # The scheduled run itself was not refused by its own job lease.
    assert (result.outcome, result.detail) == \
        ("ok", "Tune sync: 1 created, 0 updated, 0 held, 0 released, 0 unchanged.")


def test_scheduled_reconcile_is_the_networks_yesterday_and_kept_for_the_dashboard(connected, tune):
    tune.add_conversion("tx-1", 1001, "2026-11-20 23:30:00", payout="12.40", click_id="not-ours")
    tune.add_stat("2026-11-20", 1001, clicks=2, conversions=1, payout="12.40")
    now = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.timezone.utc)        # 22:00 on the 21st in New York

    outcome = tune_jobs.scheduled_reconcile(connected.config, now=now)

    assert outcome == ("Reconciled 2026-11-20: Tune reports $12.40 more than we recorded yesterday:"
                       " 1 conversion we never received.")
    stats_call = next(params for method, params in tune.calls if method == "getStats")
    assert stats_call["filters[Stat.date][values][]"] == ["2026-11-20", "2026-11-20"]
    last = tune_jobs.last_results(connected)["last_reconciliation"]
    assert (last["from"], last["to"], last["missing_in_ours"]) == ("2026-11-20", "2026-11-20", 1)
    conn = database.connect(connected.config["DATABASE"])
    try:
        assert conn.execute("SELECT count(*) FROM conversions").fetchone()[0] == 0    # no repair on its own
    finally:
        conn.close()


def test_sync_interval_follows_the_setting_with_a_floor():
    assert tune_jobs.sync_interval_s({}) == 900
    assert tune_jobs.sync_interval_s({"POPUP_TUNE_SYNC_S": "3600"}) == 3600
    assert tune_jobs.sync_interval_s({"POPUP_TUNE_SYNC_S": "10"}) == 300
