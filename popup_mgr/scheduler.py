"""One scheduler thread per server process for all periodic work (backups, checks, digest, Tune
sync).

Why one thread and a database lease:
* Jobs of one process run one after another on the scheduler's own thread, so request threads
  never pay for them and a job cannot overlap itself inside the process.
* Two processes on one database (a second server started by mistake, a restart overlapping the
  old process) coordinate through the database: a job runs only while its process holds the
  job's lease (`job:<name>` in `leases`, see leases.py), and whether a job is due is decided
  from `job_runs`, the history both processes share, so a job runs once per interval in total,
  not once per process.
* A job that raises is logged, recorded as an 'error' run and scheduled again at its next
  interval; it never stops the thread, the other jobs or the server.

Wiring into the server is one call per job plus start/stop:

    scheduler = Scheduler(app.config["DATABASE"])
    scheduler.add("backup", 86400, lambda: backup.scheduled_backup(app.config))
    scheduler.start()            # ... scheduler.stop() at shutdown

Tests drive it without sleeping: with a fake `clock` and `run_pending()` in the test's thread,
or with the thread and `run_now(name).wait()`.
"""
import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field

from popup_mgr import db as database
from popup_mgr import leases, timeutil

log = logging.getLogger(__name__)

RUNS_KEPT_PER_JOB = 100          # history shown to the admin; older runs are deleted
DEFAULT_MAX_RUNTIME_S = 3600     # a lease outlives its job by at most this; then another may run it
MAX_DETAIL_CHARS = 2000
IDLE_WAIT_S = 60.0               # the thread re-reads the shared history at least this often
# Jobs' lease names carry a prefix so that no job can take a lease another part of the app uses
# under its own name: the "tune-sync" job must not hold tune_sync's "tune-sync" lease, which the
# sync it runs takes for itself (and would then find busy).
JOB_LEASE_PREFIX = "job:"


@dataclass
class Job:
    name: str
    interval_s: float
    function: object
    max_runtime_s: float = DEFAULT_MAX_RUNTIME_S
    next_due: float = 0.0                     # clock seconds; 0 = read from job_runs first
    requested: list = field(default_factory=list)   # threading.Event per pending run_now()


@dataclass(frozen=True)
class RunResult:
    job: str
    outcome: str          # 'ok', 'error', or 'skipped' (another process holds the lease)
    detail: str = ""


def new_owner_id():
    """Names this process in leases and runs: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Scheduler:
    def __init__(self, database_path, *, clock=time.time, owner=None, on_outcome=None):
        """clock: seconds since the epoch (a fake one in tests). on_outcome(name, outcome,
        detail) is called after every run, e.g. to raise an alert when a backup fails; an
        exception in it is logged and ignored."""
        self.database_path = database_path
        self.clock = clock
        self.owner = owner or new_owner_id()
        self.on_outcome = on_outcome
        self._jobs = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = None

    # --- registration and control ------------------------------------------------------------

    def add(self, name, interval_s, function, *, max_runtime_s=DEFAULT_MAX_RUNTIME_S):
        """Register function() to run every interval_s seconds. Its return value (if any) is
        stored as the run's detail, shown to the admin."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        with self._wake:
            if name in self._jobs:
                raise ValueError(f"job {name!r} is already registered")
            self._jobs[name] = Job(name, float(interval_s), function, float(max_runtime_s))
            self._wake.notify()

    def start(self):
        """Start the scheduler thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="popup-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout_s=30.0):
        """Ask the thread to finish after the job it is running (if any) and wait for it."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            stopped = not self._thread.is_alive()
            self._thread = None
            return stopped
        return True

    def job_names(self):
        """The names of the jobs registered here, in registration order."""
        return tuple(self._jobs)

    def run_now(self, name):
        """Ask the scheduler thread to run a job as soon as it is free; returns a
        threading.Event set when that run has ended (or was skipped because another process
        held the lease). The job still never runs twice at once."""
        done = threading.Event()
        with self._wake:
            if name not in self._jobs:
                raise KeyError(name)
            self._jobs[name].requested.append(done)
            self._wake.notify()
        return done

    # --- one pass (called by the thread, or directly by tests with a fake clock) --------------

    def run_pending(self):
        """Run every job that is due or requested, one after another; return their RunResults."""
        results = []
        for job in self._due_jobs():
            results.append(self._run(job))
        return results

    def _due_jobs(self):
        with self._wake:
            jobs = list(self._jobs.values())
        unknown = [job for job in jobs if job.next_due == 0.0]
        if unknown:
            self._load_next_due(unknown)
        now = self.clock()
        return [job for job in jobs if job.requested or job.next_due <= now]

    def _load_next_due(self, jobs):
        """A job is due interval_s after its last start by ANY process (history is shared)."""
        with database.connection(self.database_path) as db:
            for job in jobs:
                started_ms = last_started_ms(db, job.name)
                job.next_due = self.clock() if started_ms is None else started_ms / 1000 + job.interval_s

    def _run(self, job):
        with self._wake:
            waiters, job.requested = job.requested, []
        try:
            result = self._run_under_lease(job, forced=bool(waiters))
        finally:
            for done in waiters:
                done.set()
        self._notify(result)
        return result

    def _run_under_lease(self, job, forced):
        now_ms = int(self.clock() * 1000)
        # A forced run (run_now) ignores the schedule, never the lease.
        not_started_after_ms = None if forced else now_ms - int(job.interval_s * 1000)
        with database.connection(self.database_path) as db:
            claim = claim_run(db, job.name, self.owner, now_ms, int(job.max_runtime_s * 1000),
                              not_started_after_ms)
        if claim.run_id is None:
            if claim.last_started_ms is not None:      # another process ran it: follow the shared schedule
                job.next_due = claim.last_started_ms / 1000 + job.interval_s
            else:                                       # it is running elsewhere: look again later
                job.next_due = self.clock() + min(job.interval_s, IDLE_WAIT_S)
            return RunResult(job.name, "skipped", claim.reason)
        job.next_due = now_ms / 1000 + job.interval_s
        outcome, detail = self._call(job)
        with database.connection(self.database_path) as db:
            finish_run(db, claim.run_id, int(self.clock() * 1000), outcome, detail, self.owner)
        return RunResult(job.name, outcome, detail)

    def _call(self, job):
        started = time.monotonic()
        try:
            value = job.function()
        except (Exception, SystemExit) as exc:     # a job must never end the scheduler thread
            log.error("scheduled job %s failed after %.1f s:\n%s", job.name,
                      time.monotonic() - started, traceback.format_exc())
            return "error", f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS]
        return "ok", ("" if value is None else str(value))[:MAX_DETAIL_CHARS]

    def _notify(self, result):
        if self.on_outcome is None or result.outcome == "skipped":
            return
        try:
            self.on_outcome(result.job, result.outcome, result.detail)
        except Exception:
            log.exception("on_outcome hook failed for job %s", result.job)

    # --- the thread ---------------------------------------------------------------------------

    def _loop(self):
        while True:
            with self._wake:
                if self._stopping:
                    return
            try:
                self.run_pending()
            except Exception:
                # The database itself failed (disk full, locked for too long): try again later.
                log.exception("scheduler pass failed")
                self._sleep(IDLE_WAIT_S)
                continue
            self._sleep(self._seconds_to_next())

    def _seconds_to_next(self):
        with self._wake:
            dues = [job.next_due for job in self._jobs.values()]
        if not dues:
            return IDLE_WAIT_S
        return max(0.0, min(min(dues) - self.clock(), IDLE_WAIT_S))

    def _sleep(self, seconds):
        with self._wake:
            if self._stopping or any(job.requested for job in self._jobs.values()):
                return
            self._wake.wait(seconds)


# --- SQL ---------------------------------------------------------------------------------------

def last_started_ms(db, job):
    row = db.execute("/* scheduler.last_started_ms */ SELECT max(started_ms) FROM job_runs WHERE job = ?",
                     (job,)).fetchone()
    return row[0]


@dataclass(frozen=True)
class Claim:
    run_id: int | None            # the new 'running' row, or None when the run must not happen
    reason: str = ""
    last_started_ms: int | None = None


def job_lease_name(job):
    """The name of a job's lease in the leases table."""
    return JOB_LEASE_PREFIX + job


def claim_run(db, job, owner, now_ms, lease_ms, not_started_after_ms=None):
    """In one transaction, so two processes cannot both pass the checks: skip when the job
    started after not_started_after_ms (another process ran it this interval), take the lease
    or skip when another process holds it, and record the run as 'running'."""
    with database.transaction(db):
        if not_started_after_ms is not None:
            started_ms = last_started_ms(db, job)
            if started_ms is not None and started_ms > not_started_after_ms:
                return Claim(None, "ran recently in another process", started_ms)
        if not leases.take(db, job_lease_name(job), owner, now_ms, lease_ms):
            return Claim(None, "another process is running it")
        return Claim(_insert_run(db, job, owner, now_ms))


def start_run(db, job, owner, now_ms):
    """Record a run as 'running'; returns its id."""
    with database.transaction(db):
        return _insert_run(db, job, owner, now_ms)


def _insert_run(db, job, owner, now_ms):
    cursor = db.execute("/* scheduler.insert_run */ INSERT INTO job_runs (job, owner, started_ms)"
                        " VALUES (?, ?, ?)", (job, owner, now_ms))
    return cursor.lastrowid


def finish_run(db, run_id, now_ms, outcome, detail, owner):
    """Record how the run ended, release the lease and keep only the latest runs of the job."""
    with database.transaction(db):
        row = db.execute("/* scheduler.finish_run */ UPDATE job_runs SET finished_ms = ?, outcome = ?,"
                         " detail = ? WHERE id = ? RETURNING job", (now_ms, outcome, detail, run_id)).fetchone()
        leases.give_back(db, job_lease_name(row["job"]), owner)
        db.execute("/* scheduler.finish_run */ DELETE FROM job_runs WHERE job = ? AND id <= ("
                   " SELECT id FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                   (row["job"], row["job"], RUNS_KEPT_PER_JOB))


def job_status(db, now_ms=None):
    """The latest run of every job that has run, for the admin and /metrics:
    [{"job", "started_at", "finished_at", "duration_ms", "outcome", "detail", "owner",
      "last_ok_at"}], by job name. A run still 'running' whose lease has expired or was given
    up is shown as 'interrupted' (its process died during the run)."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    rows = db.execute(
        "/* scheduler.job_status */ SELECT r.job, r.owner, r.started_ms, r.finished_ms, r.outcome, r.detail,"
        " (SELECT max(ok.started_ms) FROM job_runs ok WHERE ok.job = r.job AND ok.outcome = 'ok') AS last_ok_ms,"
        " l.holder AS lease_owner, l.expires_ms AS lease_expires_ms"
        " FROM job_runs r LEFT JOIN leases l ON l.name = :prefix || r.job"
        " WHERE r.id = (SELECT max(id) FROM job_runs latest WHERE latest.job = r.job)"
        " ORDER BY r.job", {"prefix": JOB_LEASE_PREFIX}).fetchall()
    return [_status_entry(row, now_ms) for row in rows]


def job_history(db, job, limit=20):
    """The latest runs of one job, newest first, in job_status's shape (without last_ok_at)."""
    rows = db.execute("/* scheduler.job_history */ SELECT job, owner, started_ms, finished_ms, outcome, detail"
                      " FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?", (job, limit)).fetchall()
    return [_run_entry(row) for row in rows]


def _status_entry(row, now_ms):
    entry = _run_entry(row)
    if entry["outcome"] == "running" and not (
            row["lease_owner"] == row["owner"] and row["lease_expires_ms"] > now_ms):
        entry["outcome"] = "interrupted"
    entry["last_ok_at"] = _iso_ms(row["last_ok_ms"])
    return entry


def _run_entry(row):
    finished = row["finished_ms"]
    return {"job": row["job"], "started_at": _iso_ms(row["started_ms"]), "finished_at": _iso_ms(finished),
            "duration_ms": None if finished is None else finished - row["started_ms"],
            "outcome": row["outcome"], "detail": row["detail"], "owner": row["owner"]}


def _iso_ms(ms):
    if ms is None:
        return None
    return timeutil.iso_utc(dt.datetime.fromtimestamp(ms / 1000, timeutil.UTC))
