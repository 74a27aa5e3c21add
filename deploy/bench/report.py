#!/usr/bin/env python3
"""Summarises a deploy/bench/run.sh output directory: reads results.tsv and the
h2load per-request logs it names, prints markdown tables (throughput, latency
percentiles, CPU per 10k calls, peak RSS, ratios of the gateway to the upstream
direct and to nginx) and writes sweep.svg, p99 against offered rate per target.
Usage: report.py OUT_DIR"""
import csv
import glob
import os
import sys

CLK = os.sysconf("SC_CLK_TCK")
TARGETS = ["direct", "nginx", "floor", "sqlite", "postgres"]
COLOURS = {"direct": "#1b9e77", "nginx": "#7570b3", "floor": "#666666", "sqlite": "#d95f02", "postgres": "#e7298a"}


def latencies(logs):
    """(microseconds of each completed request, count of non-200 responses)."""
    out, bad = [], 0
    for path in glob.glob(os.path.join(logs, "*.log")):
        with open(path) as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) < 3:
                    continue
                if cols[1] != "200":
                    bad += 1
                    continue
                out.append(int(cols[2]))
    out.sort()
    return out, bad


def pct(sorted_us, p):
    if not sorted_us:
        return float("nan")
    i = min(len(sorted_us) - 1, int(round(p / 100.0 * (len(sorted_us) - 1))))
    return sorted_us[i] / 1000.0


def rows(out_dir):
    found = []
    with open(os.path.join(out_dir, "results.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            lat, bad = latencies(r["logs"])
            secs = float(r["secs"])
            calls = len(lat)
            found.append({
                **r,
                "rate": int(r["rate"]),
                "calls": calls,
                "non200": bad,
                "rps": calls / secs,
                "p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9),
                "cpu_us": (int(r["cpu_ticks"]) / CLK) * 1e6 / calls if calls else float("nan"),
                "rss_mib": int(r["hwm_kib"]) / 1024.0,
            })
    return found


def table(found, scenario, title):
    sel = {r["target"]: r for r in found if r["scenario"] == scenario}
    if not sel:
        return
    print(f"\n### {title}\n")
    print("| target | calls/s | p50 ms | p99 ms | p99.9 ms | CPU s per 10k calls | peak RSS MiB | ÷ direct | ÷ nginx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in TARGETS:
        r = sel.get(t)
        if not r:
            continue
        ratio = lambda other: f"{r['rps'] / sel[other]['rps']:.2f}" if other in sel and sel[other]["rps"] else "-"
        print(f"| {t} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p999']:.2f} | "
              f"{r['cpu_us'] * 1e4 / 1e6:.2f} | {r['rss_mib']:.0f} | {ratio('direct')} | {ratio('nginx')} |")
        if r["non200"]:
            print(f"|  ({t}: {r['non200']} non-200 responses) |||||||||")
        if r.get("writer", "-") not in ("-", "", None):
            print(f"|  ({t}: access-log writer {r['writer']}) |||||||||")
        if r.get("unexpected", "-") not in ("-", ""):
            print(f"|  ({t}: refused or failed beyond the mix's denials: {r['unexpected']}) |||||||||")


def sweep(found):
    points = {}
    for r in found:
        if r["scenario"] == "sweep":
            points.setdefault(r["target"], []).append((r["rate"], r["rps"], r["p99"]))
    if not points:
        return points
    print("\n### Open loop: p99 ms (achieved calls/s) at each offered rate\n")
    rates = sorted({p[0] for ps in points.values() for p in ps})
    targets = [t for t in TARGETS if t in points]
    print("| offered/s | " + " | ".join(targets) + " | gateway p99 added over direct (sqlite / postgres) |")
    print("|---:|" + "---:|" * len(targets) + "---:|")
    by = {t: {p[0]: p for p in points[t]} for t in targets}
    for rate in rates:
        cells = []
        for t in targets:
            p = by[t].get(rate)
            cells.append(f"{p[2]:.2f} ({p[1]:.0f})" if p else "-")
        added = []
        for t in ("sqlite", "postgres"):
            if rate in by.get(t, {}) and rate in by.get("direct", {}):
                added.append(f"{by[t][rate][2] - by['direct'][rate][2]:.2f}")
        print(f"| {rate} | " + " | ".join(cells) + f" | {' / '.join(added) or '-'} |")
    return points


def svg(points, path):
    """p99 (log scale) against offered rate, one line per target."""
    import math
    w, h, left, bottom, top, right = 720, 420, 70, 50, 20, 130
    rates = [p[0] for ps in points.values() for p in ps]
    p99s = [p[2] for ps in points.values() for p in ps if p[2] == p[2] and p[2] > 0]
    if not rates or not p99s:
        return
    xmax = max(rates)
    ylo, yhi = math.log10(max(min(p99s), 0.01)), math.log10(max(p99s))
    ylo, yhi = math.floor(ylo), math.ceil(yhi) if yhi > ylo else math.floor(ylo) + 1
    x = lambda r: left + (w - left - right) * r / xmax
    y = lambda v: h - bottom - (h - bottom - top) * (math.log10(max(v, 10 ** ylo)) - ylo) / (yhi - ylo)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{(w - right + left) / 2}" y="{h - 12}" text-anchor="middle">offered rate (calls/s)</text>',
           f'<text x="16" y="{(h - bottom + top) / 2}" transform="rotate(-90 16 {(h - bottom + top) / 2})" text-anchor="middle">p99 latency (ms, log)</text>']
    for e in range(ylo, yhi + 1):
        out.append(f'<line x1="{left}" y1="{y(10 ** e):.1f}" x2="{w - right}" y2="{y(10 ** e):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(10 ** e) + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    for r in sorted(set(rates)):
        out.append(f'<text x="{x(r):.1f}" y="{h - bottom + 16}" text-anchor="middle" font-size="10">{r}</text>')
    for i, (t, ps) in enumerate((t, points[t]) for t in TARGETS if t in points):
        ps = sorted(ps)
        line = " ".join(f"{x(p[0]):.1f},{y(p[2]):.1f}" for p in ps if p[2] == p[2])
        c = COLOURS[t]
        out.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2"/>')
        out += [f'<circle cx="{x(p[0]):.1f}" cy="{y(p[2]):.1f}" r="3" fill="{c}"/>' for p in ps if p[2] == p[2]]
        out.append(f'<text x="{w - right + 10}" y="{top + 16 + 18 * i}" fill="{c}">{t}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    out_dir = sys.argv[1]
    found = rows(out_dir)
    with open(os.path.join(out_dir, "conditions.txt")) as f:
        print("```\n" + f.read().strip() + "\n```")
    table(found, "low", "Closed loop, 32 connections x 1 stream")
    table(found, "high", "Closed loop, 50 connections x 20 streams")
    table(found, "streams", "10,000 streams: 1,000 connections x 10 streams")
    points = sweep(found)
    if points:
        svg(points, os.path.join(out_dir, "sweep.svg"))
        print(f"\n(plot: {os.path.join(out_dir, 'sweep.svg')})")


if __name__ == "__main__":
    main()
