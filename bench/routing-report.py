#!/usr/bin/env python3
"""Writes bench/routing's Markdown report from its raw results.

    routing-report.py WORK_DIR > routing-bench.md

WORK_DIR holds what bench/routing collected:
  meta.tsv      key<TAB>value lines: machine, versions, settings, the routing monitors' rate
  results.tsv   one line per pgbench run (header line first)
  share.tsv     one line per routed run: the standby's xact_commit delta and Sluice's own counters
  method.md     how it measures, in Markdown
  commands.md   the exact commands, already in Markdown
Medians and min-max spreads are over the runs of a cell that exited 0 and completed transactions.
"""
import os
import sys

# The table helpers bench/compare's report uses (this directory is on the path when run as a script).
from report import failures, fmt, num, ratio, read_tsv, spread, succeeded

NAMES = {
    "direct": "PostgreSQL direct",
    "pgbouncer": "PgBouncer",
    "sluice_off": "Sluice, routing off",
    "sluice_on": "Sluice, routing on",
    "sluice_on_nowait": "Sluice, routing on, read_your_writes = off",
}
SELECT_TARGETS = ["direct", "pgbouncer", "sluice_off", "sluice_on"]
RYW_TARGETS = ["sluice_off", "sluice_on", "sluice_on_nowait"]
TPCB_TARGETS = ["sluice_off", "sluice_on"]


class Shares:
    """The standby's share of a routed cell's transactions, per run."""

    def __init__(self, rows, monitor_rate):
        self.rows = rows
        self.monitor_rate = monitor_rate

    def runs(self, scenario, clients, target):
        return [
            r
            for r in self.rows
            if r["scenario"] == scenario and r["clients"] == str(clients) and r["target"] == target
        ]

    def cell(self, scenario, clients, target):
        """(share from xact_commit, text), (Sluice's share, text), details text."""
        runs = self.runs(scenario, clients, target)
        pg_shares, sluice_shares, monitor, commits = [], [], [], []
        for r in runs:
            tx, delta, window = num(r["transactions"]), num(r["standby_commits"]), num(r["window_s"])
            standby = num(r["sluice_standby_reads"])
            if tx and delta is not None and window is not None:
                estimate = self.monitor_rate * window
                monitor.append(estimate)
                commits.append(delta)
                pg_shares.append(100 * (delta - estimate) / tx)
            if tx and standby is not None:
                sluice_shares.append(100 * standby / tx)
        pg_text, pg = spread(pg_shares, 1, " %")
        sluice_text, sluice = spread(sluice_shares, 1, " %")
        commits_text, _ = spread(commits)
        monitor_text, _ = spread(monitor)
        return (pg, pg_text), (sluice, sluice_text), commits_text, monitor_text


def target_rows(rows, scenario, clients, targets, clk_tck):
    """Per target: (table cells, tps median, p99 median, notes)."""
    out = {}
    for target in targets:
        runs = [r for r in rows if r["scenario"] == scenario and int(r["clients"]) == clients and r["target"] == target]
        if not runs:
            continue
        good = [r for r in runs if succeeded(r)]
        tps_text, tps = spread([num(r["tps"]) for r in good])
        avg_text, _ = spread([num(r["avg_ms"]) for r in good], 2)
        p99_text, p99 = spread([num(r["p99_ms"]) for r in good], 2)
        cpu_values = []
        for r in good:
            cpu, tx = num(r["cpu_ticks"]), num(r["transactions"])
            cpu_values.append(cpu / clk_tck * 1e6 / tx if cpu is not None and tx else None)
        cpu_text, _ = spread(cpu_values, 1)
        if target == "direct":
            cpu_text = "n/a"
        if len(good) < len(runs):
            tps_text += f" [n={len(good)}/{len(runs)}]"
        failure_text, run_notes = failures(runs)
        out[target] = (
            [tps_text, avg_text, p99_text, cpu_text, failure_text],
            tps,
            p99,
            [f"{clients} clients, {NAMES[target]}, {n}" for n in run_notes],
        )
    return out


def select_section(rows, shares, scenario, title, clk_tck, summary):
    rows = [r for r in rows if r["scenario"] == scenario]
    if not rows:
        return []
    lines = [
        f"## {title}",
        "",
        "| clients | target | tps, median (min–max) | avg latency ms | p99 latency ms | proxy CPU µs/tx | failures"
        " | routing on ÷ off: tps / p99 | routing on ÷ PgBouncer: tps / p99 | standby share (xact_commit) |",
        "|---:|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    notes = []
    for clients in sorted({int(r["clients"]) for r in rows}):
        cells = target_rows(rows, scenario, clients, SELECT_TARGETS, clk_tck)
        for target in SELECT_TARGETS:
            if target not in cells:
                continue
            text, tps, p99, run_notes = cells[target]
            notes += run_notes
            vs_off = vs_bouncer = share_text = ""
            if target == "sluice_on":
                off = cells.get("sluice_off", (None, None, None))
                bouncer = cells.get("pgbouncer", (None, None, None))
                vs_off = f"{ratio(tps, off[1])} / {ratio(p99, off[2])}"
                vs_bouncer = f"{ratio(tps, bouncer[1])} / {ratio(p99, bouncer[2])}"
                (_, share_text), (_, sluice_text), _, _ = shares.cell(scenario, clients, target)
                summary.append(
                    f"| {scenario} | {clients} | {ratio(tps, off[1])} | {ratio(p99, off[2])}"
                    f" | {ratio(tps, bouncer[1])} | {ratio(p99, bouncer[2])} | {share_text} |"
                )
            lines.append(f"| {clients} | {NAMES[target]} | " + " | ".join(text) + f" | {vs_off} | {vs_bouncer} | {share_text} |")
    if notes:
        lines += ["", "Errors reported by pgbench (first error line of each failed run):", ""] + [f"- {n}" for n in notes]
    return lines + [""]


def share_section(shares, monitor_rate):
    keys = []
    for r in shares.rows:
        key = (r["scenario"], int(r["clients"]), r["target"])
        if key not in keys:
            keys.append(key)
    if not keys:
        return []
    lines = [
        "## 2. Which backend served the reads (routing on)",
        "",
        f"The standby's xact_commit for bench over each routed run's window, less the routing monitors' own"
        f" checks ({monitor_rate:.2f} a second, measured with nothing else running, times the window), divided by"
        " pgbench's completed transactions; beside it Sluice's own count of the reads it sent to the standby"
        " (SHOW BACKENDS `reads`), divided by the same transactions. For pgbench -S every transaction is one read. For the"
        " read-your-writes script every transaction is an UPDATE (always the primary) and one SELECT: the share is"
        " of the SELECTs.",
        "",
        "| scenario | clients | target | standby share from xact_commit, median (min–max) | Sluice's count: standby reads ÷ transactions"
        " | standby commits in the window | of which monitor (estimate) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for scenario, clients, target in keys:
        (_, pg_text), (_, sluice_text), commits, monitor = shares.cell(scenario, clients, target)
        lines.append(f"| {scenario} | {clients} | {NAMES[target]} | {pg_text} | {sluice_text} | {commits} | {monitor} |")
    return lines + [""]


def simple_section(rows, scenario, title, targets, clk_tck, shares, extra_ratio=None):
    rows = [r for r in rows if r["scenario"] == scenario]
    if not rows:
        return [], []
    lines = [
        f"## {title}",
        "",
        "| clients | target | tps, median (min–max) | avg latency ms | p99 latency ms | proxy CPU µs/tx | failures"
        " | ÷ routing off: tps / p99 | SELECTs on the standby (xact_commit / Sluice) |",
        "|---:|---|---:|---:|---:|---:|---|---|---|",
    ]
    notes, summary = [], []
    for clients in sorted({int(r["clients"]) for r in rows}):
        cells = target_rows(rows, scenario, clients, targets, clk_tck)
        off = cells.get("sluice_off", (None, None, None))
        for target in targets:
            if target not in cells:
                continue
            text, tps, p99, run_notes = cells[target]
            notes += run_notes
            vs_off = share_text = ""
            if target != "sluice_off":
                vs_off = f"{ratio(tps, off[1])} / {ratio(p99, off[2])}"
                (_, pg_text), (_, sluice_text), _, _ = shares.cell(scenario, clients, target)
                share_text = f"{pg_text} / {sluice_text}"
                summary.append(f"| {scenario} | {clients} | {NAMES[target]} | {ratio(tps, off[1])} | {ratio(p99, off[2])} |")
            lines.append(f"| {clients} | {NAMES[target]} | " + " | ".join(text) + f" | {vs_off} | {share_text} |")
        if extra_ratio:
            a, b = extra_ratio
            if a in cells and b in cells:
                lines.append("")
                lines.append(
                    f"{NAMES[a]} ÷ {NAMES[b]}, {clients} clients: tps **{ratio(cells[a][1], cells[b][1])}**,"
                    f" p99 **{ratio(cells[a][2], cells[b][2])}**."
                )
                summary.append(
                    f"| {scenario} | {clients} | {NAMES[a]} ÷ {NAMES[b]} | {ratio(cells[a][1], cells[b][1])}"
                    f" | {ratio(cells[a][2], cells[b][2])} |"
                )
    if notes:
        lines += ["", "Errors reported by pgbench (first error line of each failed run):", ""] + [f"- {n}" for n in notes]
    return lines + [""], summary


def main():
    work = sys.argv[1]
    meta = {}
    with open(os.path.join(work, "meta.tsv")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    clk_tck = float(meta.get("clk_tck", "100"))
    monitor_rate = float(meta.get("monitor_rate", "0") or 0)
    rows = read_tsv(os.path.join(work, "results.tsv"))
    shares = Shares(read_tsv(os.path.join(work, "share.tsv")), monitor_rate)
    with open(os.path.join(work, "commands.md")) as f:
        commands = f.read()
    with open(os.path.join(work, "method.md")) as f:
        method = f.read().strip()

    out = [
        "# Read/write routing: Sluice with and without replicas, against PgBouncer and direct PostgreSQL",
        "",
        f"Written by `{meta['command']}` on {meta['date']} (took {meta['elapsed']}). "
        "Rerun that command to reproduce; every number below comes from that one run.",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
    ]
    for key in ["cpu", "nproc", "memory", "kernel", "os", "postgresql", "pgbouncer", "swift", "sluice", "pgbench"]:
        out.append(f"| {key} | {meta.get(key, '?')} |")
    out += ["", "## How it measures", "", method, ""]

    select_summary = []
    body = []
    body += select_section(rows, shares, "select", "1a. pgbench -S, simple protocol", clk_tck, select_summary)
    body += select_section(
        rows, shares, "extended", "1b. pgbench -S, extended protocol (`-M extended`)", clk_tck, select_summary
    )
    body += share_section(shares, monitor_rate)
    ryw, ryw_summary = simple_section(
        rows,
        "ryw",
        "3. Read-your-writes: UPDATE a random row, then SELECT it (two autocommit statements per transaction)",
        RYW_TARGETS,
        clk_tck,
        shares,
        extra_ratio=("sluice_on", "sluice_on_nowait"),
    )
    tpcb, tpcb_summary = simple_section(
        rows, "tpcb", "4. Write-heavy: pgbench's default TPC-B-like script", TPCB_TARGETS, clk_tck, shares
    )
    body += ryw + tpcb

    summary = []
    if select_summary:
        summary += [
            "### pgbench -S: routing on against routing off and against PgBouncer",
            "",
            "tps above 1 and p99 below 1 are better for routing on.",
            "",
            "| mode | clients | on ÷ off tps | on ÷ off p99 | on ÷ PgBouncer tps | on ÷ PgBouncer p99 | standby share |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ] + select_summary + [""]
    if ryw_summary or tpcb_summary:
        summary += [
            "### Writes: routing on against routing off",
            "",
            "| scenario | clients | target | tps ratio | p99 ratio |",
            "|---|---:|---|---:|---:|",
        ] + ryw_summary + tpcb_summary + [""]
    if summary:
        out += ["## Summary (medians)", ""] + summary
    out += body
    out += ["## Commands", "", commands]
    print("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
