-- Issue 13: scopes, map and parallel record a finished scope's result as one step of kind
-- 'scope' (its own steps are keyed under '<key>/'). The CHECK keeps 'patch' (0008).
ALTER TABLE {schema}.steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE {schema}.steps ADD CONSTRAINT steps_kind_check
    CHECK (kind IN ('rpc', 'inline', 'sleep', 'suspend', 'callback', 'condition', 'patch', 'scope'));
