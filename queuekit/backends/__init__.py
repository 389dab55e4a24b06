"""Storage backends: memory and SQLite built in, PostgreSQL and Redis as extras.

Each backend beyond memory is a package with its SQL or Lua beside it; what they share is
written once here: `rows` (rows as jobs and counts), `batching` (group commit), `waiters`,
`guards` (closed, unreachable), `url_options` (`queuekit_*` URL options) and `sqlfiles`.
"""
