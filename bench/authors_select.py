#!/usr/bin/env python3
"""Reference: pseudo-label selection written from the authors' rules (semi_dpo/pseudo_labels.py and
build_pseudo_labels.py of the official Semi-DPO code) as plain Python + numpy, plus the automatic
accuracy guard (paper App. 6.9: 80th percentile, 90th where clean-test accuracy < 70%), which the
authors applied by hand. Times the whole run and reports peak RSS; with --compare FILE checks that the
Swift select_file output is byte-identical (and, if not, whether the parsed labels are equal).

    python3 bench/authors_select.py --confidence /tmp/conf --mode percentile --values 80 \
        --clean /tmp/part/clean.json --test_confidence /tmp/conf_test --out /tmp/py_labels.json \
        [--past /tmp/labels_iter1.json] [--compare /tmp/swift_labels.json]
"""
import argparse
import json
import os
import resource
import time

import numpy as np


def load_confidences(path):
    # Shards sorted by name; a repeated idx keeps its first position and takes the later values.
    if os.path.isdir(path):
        names = sorted(f for f in os.listdir(path) if f.startswith("confidence_rank") and f.endswith(".jsonl"))
        files = [os.path.join(path, f) for f in names]
    else:
        files = [path]
    conf = {}
    for fn in files:
        with open(fn) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    conf[str(row.pop("idx"))] = row
    return conf


def anchors_of(conf):
    first = next(iter(conf.values()))
    return [int(k.split("_")[1]) for k in first if k.startswith("timestep_")]


def accuracy(conf, anchors):
    # SPEC: share of z > 0 with ties counting 1/2, over pairs that have the anchor.
    acc = []
    for t in anchors:
        v = np.array([r["timestep_%d" % t] for r in conf.values() if "timestep_%d" % t in r], dtype=np.float64)
        acc.append(float(((v > 0).sum() + 0.5 * (v == 0).sum()) / v.size) if v.size else None)
    return acc


def select(conf, anchors, mode, values, past, clean_ids):
    per_anchor = dict(zip(anchors, values if len(values) > 1 else list(values) * len(anchors)))
    labels = {idx: {"timestep_%d" % a: 0 for a in anchors} for idx in conf}
    cutoffs = {}
    for a in anchors:
        key = "timestep_%d" % a
        ranked = []
        for idx, row in conf.items():
            value = row.get(key, 0.0)
            if value == 0:
                continue
            magnitude = 0.0 if key in past.get(idx, {}) else abs(value)  # labelled before: ranked last
            ranked.append((magnitude, idx, 1 if value > 0 else -1))
        ranked.sort(key=lambda item: item[0], reverse=True)
        target = per_anchor[a]
        if mode == "top_k":
            chosen = ranked[: int(target)]
        else:
            if mode == "percentile":
                target = float(np.percentile([m for m, _, _ in ranked], target)) if ranked else 0.0
            chosen = [item for item in ranked if item[0] >= target]
        cutoffs[key] = chosen[-1][0] if chosen else float("nan")
        for _, idx, sign in chosen:
            labels[idx][key] = sign
    for idx in clean_ids:
        labels[idx] = {"timestep_%d" % a: 1 for a in anchors}
    labels = {idx: row for idx, row in labels.items() if any(row.values())}
    return labels, cutoffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--confidence", required=True)
    ap.add_argument("--mode", default="percentile", choices=["percentile", "threshold", "top_k"])
    ap.add_argument("--values", type=float, nargs="+", default=[80])
    ap.add_argument("--past", nargs="*", default=[])
    ap.add_argument("--clean", default=None)
    ap.add_argument("--test_confidence", default=None)
    ap.add_argument("--floor", type=float, default=0.70)
    ap.add_argument("--raise_to", type=float, default=90)
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    conf = load_confidences(a.confidence)
    anchors = anchors_of(conf)
    values = list(a.values) if len(a.values) > 1 else list(a.values) * len(anchors)
    if a.test_confidence and a.mode == "percentile":
        acc = accuracy(load_confidences(a.test_confidence), anchors)
        values = [max(v, a.raise_to) if (x is not None and x < a.floor) else v for v, x in zip(values, acc)]
        print("accuracy:", ["%.4f" % x for x in acc], "-> percentiles:", values)
    past = {}
    for p in a.past:
        with open(p) as f:
            past.update({str(k): v for k, v in json.load(f).items()})
    clean_ids = []
    if a.clean:
        with open(a.clean) as f:
            clean_ids = [str(i) for i in json.load(f)]
    labels, cutoffs = select(conf, anchors, a.mode, values, past, clean_ids)
    with open(a.out, "w") as f:
        json.dump(labels, f)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"python reference: {len(conf)} pairs in, {len(labels)} out, {dt:.2f} s, peak RSS {peak:.0f} MiB")
    print("cutoffs:", {k: round(v, 4) for k, v in cutoffs.items()})
    if a.compare:
        with open(a.out, "rb") as f1, open(a.compare, "rb") as f2:
            same_bytes = f1.read() == f2.read()
        print(f"swift output byte-identical: {same_bytes}")
        if not same_bytes:
            with open(a.compare) as f:
                other = json.load(f)
            same = other == labels
            print(f"parsed labels equal: {same}")
            if not same:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
