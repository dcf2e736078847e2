#!/usr/bin/env python3
"""Prints criterion results as a Markdown table: median time per element and its confidence
interval, from $CARGO_TARGET_DIR/criterion/**/new/{estimates,benchmark}.json.

    python3 benches/tools/criterion_table.py [TARGET_DIR] [GROUP_PREFIX ...]
"""
import json
import os
import sys
from pathlib import Path


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.1f} ns"


def main():
    args = sys.argv[1:]
    target = Path(args[0] if args else os.environ.get("CARGO_TARGET_DIR", "target"))
    prefixes = args[1:]
    root = target / "criterion"
    rows = []
    for est in sorted(root.glob("**/new/estimates.json")):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        name = bench["full_id"]
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        e = json.loads(est.read_text())["median"]
        per = 1
        tp = bench.get("throughput") or {}
        if "Elements" in tp:
            per = tp["Elements"]
        lo = e["confidence_interval"]["lower_bound"] / per
        hi = e["confidence_interval"]["upper_bound"] / per
        rows.append((name, e["point_estimate"] / per, lo, hi, per))
    print("| benchmark | median per element | [low, high] | elements/iter |")
    print("|---|---|---|---|")
    for name, med, lo, hi, per in rows:
        print(f"| {name} | {fmt(med)} | [{fmt(lo)}, {fmt(hi)}] | {per} |")


if __name__ == "__main__":
    main()
