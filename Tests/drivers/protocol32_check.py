"""Connects with libpq 18 (bundled with psycopg 3.3) asking for protocol 3.2, cancels a query with the
longer cancel key that version brings, and prints what it saw. Usage:
    protocol32_check.py CONNINFO
"""
import sys
import threading
import time

import psycopg

conn = psycopg.connect(sys.argv[1] + " max_protocol_version=3.2", autocommit=True)
print("libpq", psycopg.pq.version() // 10000)
print("protocol", conn.pgconn.full_protocol_version)


def cancel_soon():
    time.sleep(0.5)
    conn.cancel_safe()


threading.Thread(target=cancel_soon).start()
try:
    conn.execute("SELECT pg_sleep(5)")
    print("not cancelled")
except psycopg.errors.QueryCanceled as error:
    print("cancelled", error.sqlstate)
print("after", conn.execute("SELECT 1").fetchone()[0])
conn.close()
