#!/usr/bin/env python3
"""Writes bench/compare's Markdown report from its raw results.

    report.py WORK_DIR > performance.md

WORK_DIR holds what bench/compare collected:
  meta.tsv      key<TAB>value lines: machine, versions, settings
  results.tsv   one line per pgbench run (header line first)
  idle.tsv      one line per idle-clients run (header line first)
  method.md     how it measures, in Markdown
  commands.md   the exact commands, already in Markdown
Medians and min-max spreads are over the runs of a cell that exited 0; a cell where some runs
failed says so in its failures column, and the errors are listed under its table.
"""
import csv
import os
import statistics
import sys

TARGETS = ["direct", "pgbouncer", "sluice"]
NAMES = {"direct": "PostgreSQL direct", "pgbouncer": "PgBouncer", "sluice": "Sluice"}
SCENARIOS = [
    ("select", "1. pgbench -S, simple protocol"),
    ("extended", "2. pgbench -S, extended protocol (`-M extended`)"),
    (
        "prepared",
        "2b. pgbench -S, prepared statements (`-M prepared`; PgBouncer 1.18 cannot keep them in transaction"
        " pooling and runs `-M extended`)",
    ),
    ("storm-md5", "3a. Connection storm, md5 client auth (`-C -S`)"),
    ("storm-scram", "3b. Connection storm, SCRAM-SHA-256 client auth (`-C -S`)"),
    ("tpcb", "5. Write-heavy: pgbench default TPC-B-like script"),
]


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def spread(values, digits=0, suffix=""):
    """'median (min–max)' of the values that exist (`suffix` after the median), and the median."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a", None
    median = statistics.median(values)
    if len(values) == 1:
        return fmt(median, digits) + suffix, median
    return f"{fmt(median, digits)}{suffix} ({fmt(min(values), digits)}–{fmt(max(values), digits)})", median


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def succeeded(run):
    """A run counts when pgbench exited 0 and completed transactions."""
    return run["exit"] == "0" and (num(run["tps"]) or 0) > 0


def failures(runs):
    """Text for the failures column, and the notes to list under the table."""
    bad_exit = [r for r in runs if not succeeded(r)]
    failed = sum(int(r["failed"]) for r in runs if r["failed"].isdigit())
    aborted = sum(int(r["aborted"]) for r in runs if r["aborted"].isdigit())
    parts = []
    if failed:
        parts.append(f"{failed} failed tx")
    if aborted:
        parts.append(f"{aborted} aborted clients")
    if bad_exit:
        codes = ", ".join(sorted({r["exit"] for r in bad_exit}))
        parts.append(f"**{len(bad_exit)}/{len(runs)} runs failed** (pgbench exit {codes})")
    notes = [f"round {r['round']}: exit {r['exit']}: {r['note']}" for r in runs if r["note"] not in ("", "-")]
    return ("; ".join(parts) or "0"), notes


def scenario_table(rows, scenario, clk_tck):
    rows = [r for r in rows if r["scenario"] == scenario]
    if not rows:
        return None
    counts = sorted({int(r["clients"]) for r in rows})
    storm = scenario.startswith("storm")
    lines = [
        "| clients | target | tps, median (min–max) | avg latency ms | p99 latency ms"
        + (" | avg connect ms" if storm else "")
        + " | proxy CPU µs/tx | failures | tps vs direct | Sluice ÷ PgBouncer: tps / p99 / CPU |",
        "|---:|---|---:|---:|---:|" + ("---:|" if storm else "") + "---:|---|---:|---|",
    ]
    notes = []
    summary = {}
    for clients in counts:
        medians = {}
        for target in TARGETS:
            runs = [r for r in rows if int(r["clients"]) == clients and r["target"] == target]
            if not runs:
                continue
            if all(r["exit"] == "n/a" for r in runs):
                blanks = " |" * (7 if storm else 6)
                lines.append(f"| {clients} | {NAMES[target]} | n/a (above max_connections) |{blanks}")
                continue
            good = [r for r in runs if succeeded(r)]
            tps_text, tps = spread([num(r["tps"]) for r in good])
            avg_text, _ = spread([num(r["avg_ms"]) for r in good], 2)
            p99_text, p99 = spread([num(r["p99_ms"]) for r in good], 2)
            if storm:
                conn_text, _ = spread([num(r["conn_ms"]) for r in good], 2)
                p99_text += f" | {conn_text}"
            cpu_values = []
            for r in good:
                cpu, tx = num(r["cpu_ticks"]), num(r["transactions"])
                cpu_values.append(cpu / clk_tck * 1e6 / tx if cpu is not None and tx else None)
            cpu_text, cpu = spread(cpu_values, 1)
            if target == "direct":
                cpu_text = "n/a"
            if len(good) < len(runs):
                tps_text += f" [n={len(good)}/{len(runs)}]"
            failure_text, run_notes = failures(runs)
            notes += [f"{clients} clients, {NAMES[target]}, {n}" for n in run_notes]
            medians[target] = (tps, p99, cpu)
            vs_direct = ratio(tps, medians.get("direct", (None,))[0]) if target != "direct" else ""
            vs_bouncer = ""
            if target == "sluice" and "pgbouncer" in medians:
                b = medians["pgbouncer"]
                vs_bouncer = f"{ratio(tps, b[0])} / {ratio(p99, b[1])} / {ratio(cpu, b[2])}"
                summary[clients] = (ratio(tps, b[0]), ratio(p99, b[1]), ratio(cpu, b[2]))
            lines.append(
                f"| {clients} | {NAMES[target]} | {tps_text} | {avg_text} | {p99_text} | {cpu_text}"
                f" | {failure_text} | {vs_direct} | {vs_bouncer} |"
            )
    if notes:
        lines.append("")
        lines.append("Errors reported by pgbench (first error line of each failed run):")
        lines.append("")
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines), summary


def idle_table(rows):
    if not rows:
        return None, {}
    lines = [
        "| target | idle clients | RSS before, MiB | RSS with clients, MiB | KiB per client, median (min–max)"
        " | connect + 1 tx each, s | failures |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    per_client = {}
    for target in ["pgbouncer", "sluice"]:
        runs = [r for r in rows if r["target"] == target]
        if not runs:
            continue
        good = [r for r in runs if r["exit"] == "0"]
        before_text, _ = spread([num(r["rss_before_kb"]) / 1024 for r in good], 1)
        after_text, _ = spread([num(r["rss_after_kb"]) / 1024 for r in good], 1)
        kib_text, kib = spread(
            [(num(r["rss_after_kb"]) - num(r["rss_before_kb"])) / num(r["clients"]) for r in good], 2
        )
        connect_text, _ = spread([num(r["connect_s"]) for r in good], 2)
        bad = [r for r in runs if r["exit"] != "0"]
        failure_text = f"**{len(bad)}/{len(runs)} runs failed**" if bad else "0"
        notes += [f"{NAMES[target]}, round {r['round']}: {r['note']}" for r in bad]
        per_client[target] = kib
        lines.append(
            f"| {NAMES[target]} | {runs[0]['clients']} | {before_text} | {after_text} | {kib_text}"
            f" | {connect_text} | {failure_text} |"
        )
    lines.append("")
    lines.append(
        "Sluice ÷ PgBouncer, memory per idle client: "
        f"**{ratio(per_client.get('sluice'), per_client.get('pgbouncer'))}**"
    )
    if notes:
        lines += ["", "Errors:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines), per_client


def main():
    work = sys.argv[1]
    meta = {}
    with open(os.path.join(work, "meta.tsv")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    clk_tck = float(meta.get("clk_tck", "100"))
    rows = read_tsv(os.path.join(work, "results.tsv"))
    idle_rows = read_tsv(os.path.join(work, "idle.tsv"))
    with open(os.path.join(work, "commands.md")) as f:
        commands = f.read()
    with open(os.path.join(work, "method.md")) as f:
        method = f.read().strip()

    out = []
    out.append("# Performance: Sluice against PgBouncer and direct PostgreSQL")
    out.append("")
    out.append(
        f"Written by `{meta['command']}` on {meta['date']} (took {meta['elapsed']}). "
        "Rerun that command to reproduce; every number below comes from that one run."
    )
    out.append("")
    out.append("## Machine and versions")
    out.append("")
    out.append("| | |")
    out.append("|---|---|")
    for key in ["cpu", "nproc", "memory", "kernel", "os", "postgresql", "pgbouncer", "swift", "sluice", "pgbench"]:
        out.append(f"| {key} | {meta.get(key, '?')} |")
    out.append("")
    out.append("## How it measures")
    out.append("")
    out.append(method)
    out.append("")

    key_ratios = []
    for scenario, title in SCENARIOS:
        result = scenario_table(rows, scenario, clk_tck)
        if result is None:
            continue
        table, summary = result
        out.append(f"## {title}")
        out.append("")
        out.append(table)
        out.append("")
        for clients, (t, p, c) in summary.items():
            key_ratios.append(f"| {title.split(' ', 1)[1]} | {clients} | {t} | {p} | {c} |")
        if scenario == "storm-scram":
            idle, per_client = idle_table(idle_rows)
            if idle:
                out.append("## 4. Idle clients: pooler memory per logged-in idle client")
                out.append("")
                out.append(idle)
                out.append("")
    if idle_rows and not any(r["scenario"] == "storm-scram" for r in rows):
        idle, _ = idle_table(idle_rows)
        out.append("## 4. Idle clients: pooler memory per logged-in idle client")
        out.append("")
        out.append(idle)
        out.append("")

    if key_ratios:
        summary_lines = [
            "## Summary: Sluice ÷ PgBouncer (medians)",
            "",
            "tps above 1 is better for Sluice; p99 latency and CPU per transaction below 1 are better for Sluice.",
            "",
            "| scenario | clients | tps | p99 latency | proxy CPU/tx |",
            "|---|---:|---:|---:|---:|",
        ] + key_ratios
        _, per_client = idle_table(idle_rows)
        if per_client:
            summary_lines += [
                "",
                f"Idle clients: memory per client {ratio(per_client.get('sluice'), per_client.get('pgbouncer'))}.",
            ]
        # The summary goes right after the method section.
        at = out.index("## How it measures") + 4
        out[at:at] = summary_lines + [""]

    out.append("## Commands")
    out.append("")
    out.append(commands)
    print("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
