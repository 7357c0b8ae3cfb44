-- The console's search box (list_runs/count_runs search=): runs whose idempotency key is, or
-- starts with, some text. text_pattern_ops compares character by character whatever the
-- database's collation, so a prefix is an index range (~>=~ and ~<~, _run_filters in _sql.py);
-- a run id's beginning is a range of the primary key. Partial: runs started without a key (most)
-- add nothing to it, so starting them writes no more than before.
CREATE INDEX runs_by_key_prefix ON {schema}.runs (idempotency_key text_pattern_ops)
    WHERE idempotency_key IS NOT NULL;
