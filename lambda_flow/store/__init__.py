"""The store interface the engine talks to, and its Postgres backend (server or embedded)."""
