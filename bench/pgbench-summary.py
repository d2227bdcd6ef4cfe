#!/usr/bin/env python3
"""Summarises one pgbench run for bench/compare.

    pgbench-summary.py STDOUT_FILE STDERR_FILE LOG_PREFIX

Reads pgbench's report (stdout), its errors (stderr) and its per-transaction logs (--log with
--log-prefix=LOG_PREFIX: one file per thread, LOG_PREFIX.<pid>[.<thread>]) and prints one
tab-separated line:

    transactions  tps  avg_ms  p99_ms  failed  aborted_clients  conn_ms  note

Latencies come from the per-transaction log: every transaction that completed in the run, its
"time" column (microseconds from the start of the transaction to its end). p99 is the nearest-rank
99th percentile. With -C, pgbench's per-transaction time does not include opening the connection;
conn_ms is pgbench's own "average connection time" then, and its "initial connection time"
otherwise. A value pgbench did not print is "-". note is the first error line pgbench wrote, if any.
"""
import glob
import math
import re
import sys


def first_match(pattern, text, group=1):
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(group) if match else None


def main():
    out_path, err_path, prefix = sys.argv[1:4]
    with open(out_path, errors="replace") as f:
        out = f.read()
    with open(err_path, errors="replace") as f:
        err = f.read()

    transactions = first_match(r"^number of transactions actually processed: (\d+)", out)
    tps = first_match(r"^tps = ([0-9.]+)", out)
    failed = first_match(r"^number of failed transactions: (\d+)", out)
    conn_ms = first_match(r"^average connection time = ([0-9.]+) ms", out) or first_match(
        r"^initial connection time = ([0-9.]+) ms", out
    )
    aborted = len(re.findall(r"client \d+ .*aborted", err))

    latencies = []
    for path in glob.glob(glob.escape(prefix) + ".*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                # client_id transaction_no time script_no time_epoch time_us [...]; time is
                # "failed" or "skipped" for transactions that did not complete.
                if len(fields) >= 6 and fields[2].isdigit():
                    latencies.append(int(fields[2]))
    if latencies:
        latencies.sort()
        avg_ms = "%.3f" % (sum(latencies) / len(latencies) / 1000)
        p99_ms = "%.3f" % (latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)] / 1000)
    else:
        avg_ms = p99_ms = None

    note = ""
    for line in err.splitlines() + [l for l in out.splitlines() if "aborted" in l]:
        line = line.strip()
        if line and ("error" in line.lower() or "aborted" in line or "fatal" in line.lower()):
            note = re.sub(r"\s+", " ", line)[:200]
            break

    if transactions == "0" and not note:
        note = "no transaction completed within -T: opening the connections took longer"

    values = [transactions, tps, avg_ms, p99_ms, failed, str(aborted), conn_ms, note]
    print("\t".join("-" if v is None else v for v in values))


if __name__ == "__main__":
    main()
