-- Callbacks and polling conditions (issue 12):
-- * steps may be 'callback' (wf.callback: waits for a completion from outside) or 'condition'
--   (wf.wait_for_condition: one attempt per check, the state as the step's result).
-- * callback_id: the callback's opaque token, taken from the step's input where the pass wrote
--   it, so that completing a callback finds its step in one statement through a unique index.
--   Generated: the pass's one-statement step writes stay as they are.
--
-- Adding a stored generated column rewrites the steps table under an exclusive lock: on a
-- large schema, run it in a quiet moment.

ALTER TABLE {schema}.steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE {schema}.steps ADD CONSTRAINT steps_kind_check
    CHECK (kind IN ('rpc', 'inline', 'sleep', 'suspend', 'callback', 'condition'));

ALTER TABLE {schema}.steps ADD COLUMN callback_id text
    GENERATED ALWAYS AS (CASE WHEN kind = 'callback' THEN input ->> 'callback_id' END) STORED;

CREATE UNIQUE INDEX steps_callback_id ON {schema}.steps (callback_id)
    WHERE callback_id IS NOT NULL;
