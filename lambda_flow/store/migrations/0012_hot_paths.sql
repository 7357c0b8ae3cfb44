-- Issue 14: every hot query flat in the history's size (python -m bench history-scale).
-- * runs_by_workflow_status: list_runs(workflow=W, status=S) read W's runs newest first,
--   filtering past those in other statuses (every run in flight, for S = completed). With it a
--   page is ~50 index entries whatever the history. list_runs writes its status filter so the
--   planner takes this index (or runs_by_status) rather than runs_by_created or
--   runs_by_workflow (list_runs_query in _sql.py).
-- * runs fillfactor 90: a lease taken (acquire), a step's writes (write_steps) and a result's
--   version bump (complete_step) change no indexed column of runs, so they are HOT updates when
--   the row's page has room; without the room a third of the leases taken on full pages were
--   not (each then inserts into every index of runs). Applies to pages filled from now on.
-- No index of runs covers lease_*, version, settled_version, updated_at or driven_at, so those
-- updates stay HOT: the sweeper's stuck-run query reads the running runs (runs_by_status or
-- runs_due, a number bounded by the runs in flight) rather than an index on any of them.
CREATE INDEX runs_by_workflow_status ON {schema}.runs (workflow, status, created_at DESC, id DESC);
ALTER TABLE {schema}.runs SET (fillfactor = 90);
