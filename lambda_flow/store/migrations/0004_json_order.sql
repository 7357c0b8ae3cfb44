-- Input, output and results keep the user's key order (issue 11): jsonb stores an object's
-- keys sorted (shortest first) and drops duplicates, json keeps the text as it was written.
-- Nothing filters, indexes or compares these columns in SQL, so nothing needs jsonb's
-- operators; an idempotency check that compares inputs casts both sides to jsonb. Errors stay
-- jsonb (their key order means nothing).
--
-- Rows written before this migration keep the order jsonb gave them. Changing a column's type
-- rewrites its table under an exclusive lock: on a large schema, run it in a quiet moment.

ALTER TABLE {schema}.runs
    ALTER COLUMN input  TYPE json USING input::json,
    ALTER COLUMN output TYPE json USING output::json;

ALTER TABLE {schema}.steps
    ALTER COLUMN input  TYPE json USING input::json,
    ALTER COLUMN result TYPE json USING result::json;

ALTER TABLE {schema}.step_attempts
    ALTER COLUMN result TYPE json USING result::json;
