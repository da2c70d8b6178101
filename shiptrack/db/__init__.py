"""Database access: schema migrations and connection helpers (psycopg 3)."""
