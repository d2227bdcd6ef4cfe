"""Exercises psycopg2 (libpq, client-side parameters) and prints what it saw.

Run against Sluice and straight against PostgreSQL, the output must be the same. Usage:
    psycopg2_check.py CONNINFO
"""
import sys

import psycopg2
import psycopg2.errors

from threads import run_workers

conninfo = sys.argv[1]


def worker(index):
    seen = []
    conn = psycopg2.connect(conninfo)
    try:
        cur = conn.cursor()
        total = 0
        for n in range(40):
            cur.execute("SELECT %s + %s", (n, index))
            total += cur.fetchone()[0]
            conn.commit()
        seen.append(f"sum {total}")
        cur.execute("CREATE TEMP TABLE p2_t (id int primary key) ON COMMIT DROP")
        cur.executemany("INSERT INTO p2_t VALUES (%s)", [(k,) for k in range(20)])
        try:
            cur.execute("INSERT INTO p2_t VALUES (1)")
        except psycopg2.errors.UniqueViolation as error:
            seen.append(f"unique violation {error.pgcode}")
        conn.rollback()
        cur.execute("SELECT string_agg(g::text, ',') FROM generate_series(1, 5) g")
        seen.append("agg " + cur.fetchone()[0])
        conn.commit()
    finally:
        conn.close()
    return seen


run_workers(worker)
