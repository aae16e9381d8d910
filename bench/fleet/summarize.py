#!/usr/bin/env python3
"""Prints the figures of `bench/fleet/run`: for each variant, the `shepherd sim run --json` report
(OUT/VARIANT.json) and the `/usr/bin/time -v` output (OUT/VARIANT.time), as one table.

Usage: summarize.py OUT_DIR VARIANT...
"""
import collections
import json
import re
import sys

# Storm targets (bench/README.md): under 30 s of wall time and under 1 GiB of peak RSS.
TARGETS = {"storm": {"wall": 30.0, "rss": 1024.0}}


def wall_seconds(text):
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    parts = [float(p) for p in m.group(1).split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def read_report(path):
    """The JSON report; log lines that reached stdout before it are counted and skipped."""
    with open(path) as f:
        lines = f.read().split("\n")
    start = lines.index("{") if "{" in lines else None
    if start is None:
        raise SystemExit(f"summarize: no JSON object in {path}")
    return json.loads("\n".join(lines[start:])), start


def faults_in(path):
    with open(path) as f:
        return sum(1 for line in f if "fault:" in line)


def main():
    out_dir, variants = sys.argv[1], sys.argv[2:]
    rows = collections.OrderedDict()
    notes = []
    for v in variants:
        with open(f"{out_dir}/{v}.time") as f:
            timing = f.read()
        report, log_lines = read_report(f"{out_dir}/{v}.json")
        stats = report["stats"]
        wall = wall_seconds(timing)
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1)) / 1024
        status = collections.Counter(j["status"] for j in report["jobs"].values())
        nodes = collections.Counter(report["nodes"].values())
        target = TARGETS.get(v)

        def mark(value, key, unit):
            if not target:
                return f"{value:.1f}"
            ok = "ok" if value < target[key] else "OVER"
            return f"{value:.1f} (< {target[key]:g} {unit}: {ok})"

        col = collections.OrderedDict()
        col["faults injected"] = str(faults_in(f"{out_dir}/{v}.yaml"))
        col["wall time (s)"] = mark(wall, "wall", "s")
        col["peak RSS (MiB)"] = mark(rss, "rss", "MiB")
        col["virtual seconds"] = f"{stats['virtual_seconds']:g}"
        col["events"] = str(stats["events"])
        col["diagnostics"] = str(stats["diagnostics"])
        col["reboots"] = str(stats["reboots"])
        col["restarts"] = str(stats["restarts"])
        for s in ["COMPLETE", "IN_PROGRESS", "FAILED", "USER_STOPPED", "PENDING_HEALTHCHECK",
                  "PENDING_RESTART", "RESTARTING"]:
            col[f"jobs {s}"] = str(status.get(s, 0))
        col["nodes FAILED at end"] = str(nodes.get("FAILED", 0))
        col["notifications"] = str(len(report["notifications"]))
        col["ETTR (stats.ettr)"] = f"{stats['ettr']:.4f}"
        for k, val in col.items():
            rows.setdefault(k, {})[v] = val
        if log_lines:
            notes.append(f"{v}: {log_lines} log lines were printed to stdout before the JSON "
                         f"report (spdlog's default logger writes to stdout)")

    width = max(len(k) for k in rows)
    colw = {v: max(len(v), *(len(rows[k].get(v, "")) for k in rows)) for v in variants}
    print(f"{'':{width}}  " + "  ".join(f"{v:>{colw[v]}}" for v in variants))
    for k, vals in rows.items():
        print(f"{k:{width}}  " + "  ".join(f"{vals.get(v, ''):>{colw[v]}}" for v in variants))
    for n in notes:
        print(f"note: {n}")


if __name__ == "__main__":
    main()
