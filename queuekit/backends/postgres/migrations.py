"""Creating and upgrading a jobs table: the numbered files of sql/migrations, each applied once."""

from __future__ import annotations

import logging

from ..sqlfiles import load_migrations
from .connections import Pool
from .statements import Statements, quote

logger = logging.getLogger("queuekit.postgres")


async def apply_migrations(
    pool: Pool, statements: Statements, schema: str, table: str
) -> list[int]:
    """Apply the migrations the table lacks; return the versions this call applied.

    Safe to run from many processes at once: the work happens under a transaction-level
    advisory lock, so exactly one of them applies each version.
    """
    sql = statements.sql
    migrations = load_migrations("postgres")
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        if await conn.fetchval(sql["migration_table_exists"], statements.migrations):
            done = {row[0] for row in await conn.fetch(sql["applied_versions"])}
            if all(version in done for version, _ in migrations):
                return []
        async with conn.transaction():
            await conn.execute(sql["migration_lock"], f"queuekit:{schema}.{table}")
            if not await conn.fetchval(sql["schema_exists"], quote(schema)):
                await conn.execute(sql["create_schema"])
            await conn.execute(sql["create_migrations"])
            done = {row[0] for row in await conn.fetch(sql["applied_versions"])}
            for version, script in migrations:
                if version not in done:
                    await conn.execute(statements.render(script))
                    await conn.execute(sql["record_migration"], version)
                    applied_now.append(version)
    if applied_now:
        logger.info("migrated %s to version %d", statements.jobs, applied_now[-1])
    return applied_now
