-- Operations: the scheduler's job leases and run history.

-- One row per periodic job while some process runs it. A job runs only in the process that holds
-- its lease, so two server processes on one database never run the same job at once; a lease
-- left by a crashed process expires by itself at expires_ms (Unix ms).
CREATE TABLE job_leases (
    job         TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    acquired_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- Every run of a scheduled job: when, how long, and how it ended, for the admin and /metrics.
-- Times are Unix ms (compared with job intervals); outcome 'running' until the run ends.
-- The scheduler keeps the latest runs per job and deletes older ones.
CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    outcome     TEXT    NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'ok', 'error')),
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_ms);
