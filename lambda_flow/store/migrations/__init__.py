"""The numbered SQL migrations of the Postgres schema, applied in order."""
