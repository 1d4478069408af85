"""The scheduler: due times from the shared run history, one run at a time per job across
processes (a lease per job in the leases table), failures recorded without stopping anything, run_now and stop.
Driven by a fake clock with run_pending() in the test's thread, or by the real thread with
explicit waits on run_now()'s event; never by sleeping for an interval."""
import threading
import time

import pytest

from popup_mgr import db as database
from popup_mgr import leases, tune_sync
from popup_mgr import scheduler as sched
from popup_mgr.scheduler import Scheduler

T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "popup.db"
    database.migrate(path)
    return str(path)


@pytest.fixture
def db(db_path):
    conn = database.connect(db_path)
    yield conn
    conn.close()


def outcomes(results):
    return [(r.job, r.outcome) for r in results]


def test_a_job_runs_at_once_then_every_interval(db_path, db):
    clock, calls = FakeClock(), []
    scheduler = Scheduler(db_path, clock=clock, owner="p1")
    scheduler.add("backup", 600, lambda: calls.append(clock.now) or "wrote popup-1.db")

    assert outcomes(scheduler.run_pending()) == [("backup", "ok")]     # never ran: due now
    clock.now += 599
    assert scheduler.run_pending() == []
    clock.now += 1
    assert outcomes(scheduler.run_pending()) == [("backup", "ok")]
    assert calls == [T0, T0 + 600]

    [status] = sched.job_status(db, now_ms=int(clock.now * 1000))
    assert status["job"] == "backup" and status["outcome"] == "ok"
    assert status["detail"] == "wrote popup-1.db"
    assert status["duration_ms"] == 0                 # the fake clock did not move during the run
    assert status["started_at"] == "2027-01-15T08:10:00Z"    # T0 + 600 s
    assert status["last_ok_at"] == status["started_at"]
    assert leases.current_holder(db, sched.job_lease_name("backup")) is None   # released


def test_a_failing_job_is_recorded_and_the_others_still_run(db_path, db, caplog):
    clock, seen = FakeClock(), []
    scheduler = Scheduler(db_path, clock=clock, owner="p1",
                          on_outcome=lambda name, outcome, detail: seen.append((name, outcome, detail)))

    def broken():
        raise RuntimeError("disk on fire")

    scheduler.add("broken", 60, broken)
    scheduler.add("exits", 60, lambda: exit(3))            # SystemExit must not end the thread either
    scheduler.add("fine", 60, lambda: None)
    assert outcomes(scheduler.run_pending()) == [("broken", "error"), ("exits", "error"), ("fine", "ok")]
    assert ("broken", "error", "RuntimeError: disk on fire") in seen
    assert "scheduled job broken failed" in caplog.text and "disk on fire" in caplog.text

    status = {s["job"]: s for s in sched.job_status(db, now_ms=int(clock.now * 1000))}
    assert status["broken"]["outcome"] == "error" and status["broken"]["last_ok_at"] is None
    assert status["fine"]["outcome"] == "ok"
    # The failed job is retried at its next interval, not in a tight loop.
    clock.now += 30
    assert scheduler.run_pending() == []
    clock.now += 30
    assert [r.job for r in scheduler.run_pending()] == ["broken", "exits", "fine"]


def test_a_raising_outcome_hook_is_ignored(db_path):
    def hook(*_):
        raise ValueError("mail server down")

    scheduler = Scheduler(db_path, clock=FakeClock(), on_outcome=hook)
    scheduler.add("fine", 60, lambda: None)
    assert outcomes(scheduler.run_pending()) == [("fine", "ok")]


def test_two_processes_share_one_schedule(db_path):
    """Two servers on one database: the job runs once per interval in total, not once each."""
    clock, calls = FakeClock(), []
    first = Scheduler(db_path, clock=clock, owner="p1")
    second = Scheduler(db_path, clock=clock, owner="p2")
    for scheduler, name in ((first, "p1"), (second, "p2")):
        scheduler.add("digest", 3600, lambda name=name: calls.append(name))

    first.run_pending()
    assert second.run_pending() == []          # it learns the job's due time from job_runs
    clock.now += 3600
    second.run_pending()
    assert outcomes(first.run_pending()) == [("digest", "skipped")]    # already ran this interval
    assert calls == ["p1", "p2"]


def test_a_job_never_runs_twice_at_once_across_processes(db_path, db):
    inside, release, runs = threading.Event(), threading.Event(), []

    def slow_job():
        runs.append("start")
        inside.set()
        assert release.wait(10)
        runs.append("end")

    # It ran a minute ago, so it is not due: only the explicit requests below run it (otherwise
    # the first scheduler's thread may start it on its own before run_now, and then run it again).
    now_ms = int(time.time() * 1000)
    sched.finish_run(db, sched.start_run(db, "sync", "earlier", now_ms - 60_000), now_ms - 59_000, "ok", "", "earlier")
    first = Scheduler(db_path, owner="p1")
    second = Scheduler(db_path, owner="p2")
    first.add("sync", 3600, slow_job)
    second.add("sync", 3600, slow_job)
    first.start()
    try:
        first_done = first.run_now("sync")
        assert inside.wait(10)
        # While p1 runs it, p2's explicit request is refused by the lease, not run alongside.
        second_done = second.run_now("sync")
        [result] = second.run_pending()
        assert second_done.is_set()
        assert (result.outcome, result.detail) == ("skipped", "another process is running it")
        [status] = sched.job_status(db)
        assert status["outcome"] == "running" and status["owner"] == "p1"
        release.set()
        assert first_done.wait(10)
    finally:
        release.set()
        assert first.stop()
    assert runs == ["start", "end"]
    assert sched.job_status(db)[0]["outcome"] == "ok"


def test_a_lease_left_by_a_dead_process_expires(db_path, db):
    clock = FakeClock()
    now_ms = int(T0 * 1000)
    # A process died while running the job: its run stays 'running' and its lease stays until expiry.
    assert leases.acquire(db, sched.job_lease_name("backup"), "dead", 600, now_ms=now_ms)
    sched.start_run(db, "backup", "dead", now_ms - 3_600_000)
    scheduler = Scheduler(db_path, clock=clock, owner="p1")
    scheduler.add("backup", 60, lambda: None, max_runtime_s=600)

    assert outcomes(scheduler.run_pending()) == [("backup", "skipped")]
    assert sched.job_status(db, now_ms=now_ms)[0]["outcome"] == "running"
    clock.now += 600
    assert sched.job_status(db, now_ms=int(clock.now * 1000))[0]["outcome"] == "interrupted"
    assert outcomes(scheduler.run_pending()) == [("backup", "ok")]


def test_run_now_wakes_the_thread_and_stop_ends_it(db_path, db):
    calls = []
    scheduler = Scheduler(db_path)
    scheduler.add("checks", 3600, lambda: calls.append(1))
    scheduler.start()
    try:
        # The first pass runs the never-run job; run_now then runs it again at once, although
        # its next interval is an hour away.
        assert scheduler.run_now("checks").wait(10)
        assert scheduler.run_now("checks").wait(10)
        assert len(calls) >= 2
        with pytest.raises(KeyError):
            scheduler.run_now("unknown")
        with pytest.raises(ValueError):
            scheduler.add("checks", 60, lambda: None)
    finally:
        assert scheduler.stop(timeout_s=10)
    assert not any(t.name == "popup-scheduler" for t in threading.enumerate())
    assert [s["outcome"] for s in sched.job_status(db)] == ["ok"]


def test_stop_waits_for_the_running_job(db_path, db):
    inside, release = threading.Event(), threading.Event()
    scheduler = Scheduler(db_path)
    scheduler.add("long", 3600, lambda: (inside.set(), release.wait(10)) and "finished")
    scheduler.start()
    assert inside.wait(10)
    stopper = threading.Thread(target=scheduler.stop)
    stopper.start()
    release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    [status] = sched.job_status(db)
    assert status["outcome"] == "ok" and status["detail"] == "finished"


def test_history_keeps_the_latest_runs(db_path, db, monkeypatch):
    monkeypatch.setattr(sched, "RUNS_KEPT_PER_JOB", 3)
    clock = FakeClock()
    scheduler = Scheduler(db_path, clock=clock)
    scheduler.add("tick", 1, lambda: str(clock.now))
    for _ in range(6):
        scheduler.run_pending()
        clock.now += 1
    history = sched.job_history(db, "tick")
    assert [run["detail"] for run in history] == [str(T0 + 5), str(T0 + 4), str(T0 + 3)]


def test_intervals_must_be_positive(db_path):
    with pytest.raises(ValueError):
        Scheduler(db_path).add("x", 0, lambda: None)


def test_the_schedule_check_and_the_lease_are_one_transaction(db_path, db):
    """Two processes that both saw the job as due: the second claim, made after the first run
    ended and released its lease, is still refused because the run is in the shared history."""
    now_ms = int(T0 * 1000)
    first = sched.claim_run(db, "digest", "p1", now_ms, 60_000, not_started_after_ms=now_ms - 3_600_000)
    assert first.run_id is not None
    sched.finish_run(db, first.run_id, now_ms + 10, "ok", "", "p1")
    second = sched.claim_run(db, "digest", "p2", now_ms + 20, 60_000, not_started_after_ms=now_ms - 3_600_000)
    assert second == sched.Claim(None, "ran recently in another process", now_ms)
    # A forced claim ignores the schedule but not the lease.
    forced = sched.claim_run(db, "digest", "p2", now_ms + 30, 60_000)
    assert forced.run_id is not None
    assert sched.claim_run(db, "digest", "p1", now_ms + 40, 60_000).reason == "another process is running it"


@pytest.mark.parametrize("expires_in_ms, outcome", [(1, "skipped"), (0, "ok"), (-60_000, "ok")])
def test_a_job_lease_held_by_another_process_stops_the_job_until_it_expires(db_path, db, expires_in_ms, outcome):
    now_ms = int(T0 * 1000)
    db.execute("INSERT INTO leases (name, holder, expires_ms) VALUES (?, 'p2', ?)",
               (sched.job_lease_name("backup"), now_ms + expires_in_ms))
    calls = []
    scheduler = Scheduler(db_path, clock=FakeClock(), owner="p1")
    scheduler.add("backup", 60, lambda: calls.append(1))
    assert outcomes(scheduler.run_pending()) == [("backup", outcome)]
    assert calls == ([] if outcome == "skipped" else [1])
    # A run that did happen gave its lease back; a refused one left p2's alone.
    assert leases.current_holder(db, sched.job_lease_name("backup")) == (None if calls else "p2")


def test_a_job_lease_does_not_block_a_lease_of_the_same_bare_name(db_path, db):
    """The tune-sync job runs the Tune sync, which takes tune_sync's own lease "tune-sync" with a
    holder of its own: the job's lease must be another row, or the sync would find itself busy."""
    taken = []

    def sync_like():
        with database.connection(db_path) as conn:
            holder = leases.new_holder()
            taken.append(leases.acquire(conn, tune_sync.LEASE_NAME, holder, 60))
            leases.release(conn, tune_sync.LEASE_NAME, holder)

    scheduler = Scheduler(db_path, clock=FakeClock(), owner="p1")
    scheduler.add(tune_sync.LEASE_NAME, 900, sync_like)
    assert outcomes(scheduler.run_pending()) == [(tune_sync.LEASE_NAME, "ok")]
    assert taken == [True]
    # And the other way round: the sync's lease held (by the CLI) does not stop the job's claim.
    assert leases.acquire(db, tune_sync.LEASE_NAME, "the-cli", 60, now_ms=int(T0 * 1000))
    claim = sched.claim_run(db, tune_sync.LEASE_NAME, "p1", int(T0 * 1000), 60_000)
    assert claim.run_id is not None
