#!/usr/bin/env python3
"""Writes a deterministic synthetic per-pair score file in the official Semi-DPO JSONL format,
for benchmarking `partition_scores` at Pick-a-Pic scale (default 851,293 pairs x 5 models).

    python3 bench/make_scores.py --pairs 851293 --seed 0 --out /tmp/scores.jsonl

Each line: {"idx": i, "human_scores": [1, 0] (or "label_0": 1.0 on ~10% of lines), "clip_score":
[s0, s1], "aesthetic_score": [...], "image_reward_score": [...], "pick_score": [...], "hps_score": [...]}.
Scores share a latent per-pair quality gap so that ~21% of pairs are unanimous (as on Pick-a-Pic v2);
hps_score has 6 decimals so that gaps of exactly 1e-6 (the tie tolerance) occur; ~0.5% of pairs per
model are exact ties.
"""
import argparse

import numpy as np

MODELS = [  # name, centre, spread, decimals
    ("clip_score", 0.27, 0.03, 4),
    ("aesthetic_score", 5.5, 0.6, 4),
    ("image_reward_score", 0.0, 1.0, 4),
    ("pick_score", 21.0, 1.0, 4),
    ("hps_score", 0.27, 0.000004, 6),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=851293)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n = a.pairs
    gap = rng.normal(0.0, 1.0, n)  # latent quality gap, positive: image 0 better
    winner = np.where(gap + rng.normal(0.0, 0.9, n) >= 0, 0, 1)
    use_label0 = rng.random(n) < 0.10
    cols = []
    for name, centre, spread, dec in MODELS:
        base = centre + spread * rng.normal(0.0, 1.0, n)
        delta = spread * (0.9 * gap + rng.normal(0.0, 1.05, n))
        tie = rng.random(n) < 0.005
        delta[tie] = 0.0
        s0 = np.round(base + delta / 2, dec)
        s1 = np.round(base - delta / 2, dec)
        fmt = "{:.%df}" % dec
        cols.append((name, [fmt.format(x) for x in s0], [fmt.format(x) for x in s1]))
    with open(a.out, "w") as f:
        for i in range(n):
            w = winner[i]
            if use_label0[i]:
                human = '"label_0": %s' % ("1.0" if w == 0 else "0.0")
            else:
                human = '"human_scores": [%s]' % ("1, 0" if w == 0 else "0, 1")
            parts = ['{"idx": %d, %s' % (i, human)]
            for name, a0, a1 in cols:
                parts.append('"%s": [%s, %s]' % (name, a0[i], a1[i]))
            f.write(", ".join(parts) + "}\n")


if __name__ == "__main__":
    main()
