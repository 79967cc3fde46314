#!/usr/bin/env python3
"""Writes deterministic synthetic confidence shards in the official Semi-DPO format, for benchmarking
`select_file` at Pick-a-Pic scale (default 851,293 pairs x 10 anchors, ~230 MB):

    python3 bench/make_confidence.py --pairs 851293 --ranks 4 --seed 0 --out /tmp/conf
    python3 bench/make_confidence.py --pairs 3992 --ranks 1 --seed 1 --test --out /tmp/conf_test

One line per pair in confidence_rank{r:03d}.jsonl, pairs dealt round-robin over ranks as a distributed
run does, the last batch padded with repeats of earlier pairs (as accelerate pads), values rounded to
4 decimals (~1/200 of them exactly 0). --test makes a clean-test split whose accuracy per anchor falls
from ~72% at t=50 to ~59% at t=950 (the paper's Table 7).
"""
import argparse
import json
import os

import numpy as np

ANCHORS = [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]
ACC = [0.72, 0.73, 0.73, 0.72, 0.72, 0.71, 0.69, 0.67, 0.65, 0.59]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=851293)
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pad", type=int, default=8, help="repeated pairs appended to the last rank")
    ap.add_argument("--test", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n = a.pairs
    os.makedirs(a.out, exist_ok=True)
    # A per-pair latent signal shared over anchors plus per-anchor noise; scale grows with t.
    shared = rng.normal(0.0, 1.0, n)
    cols = []
    for j, t in enumerate(ANCHORS):
        # mean shift chosen so that P(z > 0) ~ ACC[j] (z ~ N(mu, 1) -> Phi(mu) = acc)
        from statistics import NormalDist
        mu = NormalDist().inv_cdf(ACC[j]) if a.test else 0.35 - 0.02 * j
        z = (mu + 0.6 * shared + 0.8 * rng.normal(0.0, 1.0, n)) * (1.0 + t / 500.0)
        z[rng.random(n) < 0.005] = 0.0
        cols.append(np.round(z, 4).tolist())
    ids = (np.arange(n) if not a.test else rng.choice(851293, size=n, replace=False)).tolist()
    files = [open(os.path.join(a.out, "confidence_rank%03d.jsonl" % r), "w") for r in range(a.ranks)]
    for i in range(n):
        row = {"idx": ids[i]}
        for j, t in enumerate(ANCHORS):
            row["timestep_%d" % t] = cols[j][i]
        files[i % a.ranks].write(json.dumps(row) + "\n")
    for i in range(min(a.pad, n)):  # padding: repeats with identical values
        row = {"idx": ids[i]}
        for j, t in enumerate(ANCHORS):
            row["timestep_%d" % t] = cols[j][i]
        files[-1].write(json.dumps(row) + "\n")
    for f in files:
        f.close()


if __name__ == "__main__":
    main()
