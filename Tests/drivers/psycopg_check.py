"""Exercises psycopg 3 the way applications do, and prints what it saw, one line per check.

Run against Sluice and straight against PostgreSQL, the output must be the same. Usage:
    psycopg_check.py CONNINFO
prepare_threshold=0 makes psycopg prepare every statement on the server at its first use, so named
statements are used from the first query; several threads share a smaller pool.
"""
import sys

import psycopg

from threads import run_workers

conninfo = sys.argv[1]


def worker(index):
    seen = []
    with psycopg.connect(conninfo, prepare_threshold=0, autocommit=True) as conn:
        total = 0
        for n in range(40):
            total += conn.execute("SELECT %s::int + %s::int", (n, index)).fetchone()[0]
            total += conn.execute("SELECT length(%s::text)", ("x" * n,)).fetchone()[0]
        seen.append(f"sum {total}")
        # Pipeline mode: many statements, one network round trip, libpq's pipeline underneath.
        with conn.pipeline():
            cursors = [conn.execute("SELECT %s::int * 2", (k,)) for k in range(25)]
        seen.append("pipeline " + ",".join(str(c.fetchone()[0]) for c in cursors))
        # A transaction with prepared statements, one of them failing in the middle, then a rollback.
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS psy_t (id int primary key)")
            conn.execute("INSERT INTO psy_t VALUES (%s)", (index,))
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO psy_t VALUES (%s)", (index,))
            except psycopg.errors.UniqueViolation as error:
                seen.append(f"unique violation {error.sqlstate}")
            seen.append("rows %d" % conn.execute("SELECT count(*) FROM psy_t").fetchone()[0])
            conn.execute("DROP TABLE psy_t")
        # executemany: one statement prepared, run many times, inside a transaction.
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE psy_many (v int) ON COMMIT DROP")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO psy_many VALUES (%s)", [(v,) for v in range(30)])
            seen.append("many %d" % conn.execute("SELECT sum(v) FROM psy_many").fetchone()[0])
    return seen


run_workers(worker)
