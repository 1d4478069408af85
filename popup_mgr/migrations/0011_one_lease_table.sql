-- One table for leases: the scheduler's job leases move to `leases` (as rows named
-- 'job:<job name>', beside the Tune sync's 'tune-sync'), and job_leases goes.

-- Its rows are dropped, not copied. Migrations run when a process starts, and an upgrade is done
-- with the server stopped: a server that stopped cleanly gave its leases back, so any row left
-- belongs to a process that died during a run. Such a row would only keep the job from running
-- until it expired (up to the job's maximum runtime, an hour by default) for a holder that will
-- never finish; without it the new server may run the job at once, and the dead run's 'running'
-- row in job_runs shows as 'interrupted' on the Jobs page, which is what happened to it.
-- (Were an old server still running, it could claim no job any more, its SQL naming a table that
-- is gone, so it would run nothing beside the new one; only a run it was in the middle of could
-- overlap a new run of the same job, as after any stop that does not wait for the running job.)
DROP TABLE job_leases;
