-- Issue 12: the sweeper fails suspended runs past their deadline (no timer wakes them). This
-- partial index keeps its bounded statement (fail_overdue) from reading every suspended run.
CREATE INDEX runs_overdue ON {schema}.runs (deadline) WHERE status = 'suspended';
