"""Storage backends: memory and SQLite built in, PostgreSQL and Redis as extras."""
