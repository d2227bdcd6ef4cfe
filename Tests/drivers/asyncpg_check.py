"""Exercises asyncpg with its statement cache on (its default), and prints what it saw.

Run against Sluice and straight against PostgreSQL, the output must be the same. Usage:
    asyncpg_check.py HOST PORT USER PASSWORD DATABASE
asyncpg prepares every query as a named statement and reuses it by name from its cache: through a
pooler that does not track statements this fails with "prepared statement ... does not exist".
"""
import asyncio
import sys

import asyncpg

host, port, user, password, database = sys.argv[1:6]
TASKS = 8


async def worker(index):
    seen = []
    conn = await asyncpg.connect(host=host, port=int(port), user=user, password=password, database=database)
    try:
        total = 0
        for n in range(40):
            total += await conn.fetchval("SELECT $1::int + $2::int", n, index)
            total += await conn.fetchval("SELECT length($1::text)", "y" * n)
        seen.append(f"sum {total}")
        statement = await conn.prepare("SELECT $1::text || '!' AS shout")
        seen.append("prepared " + ",".join([await statement.fetchval(str(k)) for k in range(5)]))
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE apg_t (id int primary key) ON COMMIT DROP")
            await conn.executemany("INSERT INTO apg_t VALUES ($1)", [(k,) for k in range(20)])
            try:
                async with conn.transaction():
                    await conn.execute("INSERT INTO apg_t VALUES (1)")
            except asyncpg.UniqueViolationError as error:
                seen.append(f"unique violation {error.sqlstate}")
            seen.append("rows %d" % await conn.fetchval("SELECT count(*) FROM apg_t"))
        records = await conn.fetch("SELECT g, g * g AS square FROM generate_series(1, $1::int) g", 5)
        seen.append("fetch " + ",".join(f"{r['g']}:{r['square']}" for r in records))
    finally:
        await conn.close()
    return [f"task {index}: {line}" for line in seen]


async def main():
    results = await asyncio.gather(*(worker(i) for i in range(TASKS)))
    for line in sorted(line for lines in results for line in lines):
        print(line)


asyncio.run(main())
