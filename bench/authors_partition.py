#!/usr/bin/env python3
"""Reference: the authors' multi-reward consensus rule as a plain Python loop over the score JSONL
(written from the rule in the authors' semi_dpo/split_consensus.py: a member votes for image 0 if
s0 > s1, image 1 if s1 > s0, and abstains when |s0 - s1| <= 1e-6; a pair is clean iff every member's
vote equals the human winner). Times the pass and, with --compare DIR, checks that the Swift
partition_scores output (clean.json + clean_test.json, noisy.json) has exactly the same ids.

    python3 bench/authors_partition.py --scores /tmp/scores.jsonl [--compare /tmp/part]
"""
import argparse
import json
import time

TIE_TOLERANCE = 1e-6


def human_winner(row):
    # The authors check human_scores, then winner_idx, else image 0; label_0 (Pick-a-Pic) is the
    # SPEC's other form: human_scores = [label_0, 1 - label_0].
    if "human_scores" in row:
        s = row["human_scores"]
        return 0 if s[0] >= s[1] else 1
    if "winner_idx" in row:
        return int(row["winner_idx"])
    if "label_0" in row:
        return 0 if row["label_0"] >= 1 - row["label_0"] else 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", required=True)
    ap.add_argument("--members", nargs="*", default=None)
    ap.add_argument("--compare", default=None, help="output dir of semidpo partition_scores")
    ap.add_argument("--out", default=None, help="write the clean ids here (JSON array)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    clean, noisy = [], []
    members = a.members
    with open(a.scores) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if members is None:
                members = [k for k in row if k.endswith("_score")]
            w = human_winner(row)
            votes = []
            for name in members:
                s0, s1 = row[name]
                votes.append(None if abs(s0 - s1) <= TIE_TOLERANCE else (0 if s0 > s1 else 1))
            (clean if all(v == w for v in votes) else noisy).append(int(row["idx"]))
    dt = time.perf_counter() - t0
    total = len(clean) + len(noisy)
    print(f"python reference: {total} pairs, {len(clean)} clean ({len(clean) / max(total, 1):.4f}), {dt:.2f} s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(clean, f)
    if a.compare:
        with open(f"{a.compare}/clean.json") as f:
            sw = json.load(f)
        with open(f"{a.compare}/clean_test.json") as f:
            sw_test = json.load(f)
        with open(f"{a.compare}/noisy.json") as f:
            sw_noisy = json.load(f)
        same_clean = sorted(sw + sw_test) == sorted(clean)
        same_noisy = sw_noisy == noisy
        print(f"swift clean (train {len(sw)} + test {len(sw_test)}) identical to reference: {same_clean}")
        print(f"swift noisy ({len(sw_noisy)}) identical to reference (same order): {same_noisy}")
        if not (same_clean and same_noisy):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
