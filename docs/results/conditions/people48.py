#!/usr/bin/env python3
"""Session 41: the grid pair (1200 student steps) trained on 48 labelled people against the same
recipe on the conditions' 12, per seed, on the people both hold out (OpenEDS 48-71; AEA's 8
validation recordings, the same under both splits).

    python3 people48.py

Reads the summaries beside this script (`gaze reproduce conditions` writes them), per seed S:
conditions_people80_grid1200_seedS.json (12 labelled people, sessions 38-40) and
conditions_people80_train48_grid1200_seedS.json (48), for the seeds that have the second. Per cell it prints each summary's own
student / baseline (frames weighed alike, over its own held-out people), then both students on the
common people with people weighed alike, each against its own run's mean-gaze baseline on those
people, and the 48 - 12 difference per person (mean ± standard error, how many lower).
"""
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def cells(name):
    with open(os.path.join(HERE, name)) as f:
        summary = json.load(f)
    out = {}
    for condition in summary["conditions"]:
        for dataset, cell in condition["datasets"].items():
            (seed,) = cell["per_seed"]  # one seed in each
            out[(condition["name"], dataset)] = {
                "ratio": cell["student_vs_baseline"],
                "student": seed["student_people_deg"],
                "baseline": cell["baseline_people_deg"],
            }
    return out


def mean(values):
    return sum(values) / len(values)


def main():
    print("| condition | dataset | seed | 12 people: all held out | 48 people: all held out | common people | "
          "12 people on them | 48 people on them | 48 - 12 per person (deg) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in range(3):
        if os.path.exists(os.path.join(HERE, f"conditions_people80_train48_grid1200_seed{seed}.json")):
            compare(seed)


def compare(seed):
    base = cells(f"conditions_people80_grid1200_seed{seed}.json")
    more = cells(f"conditions_people80_train48_grid1200_seed{seed}.json")
    for key in sorted(more):
        b, m = base[key], more[key]
        people = sorted(set(b["student"]) & set(m["student"]), key=int)
        diffs = [m["student"][p] - b["student"][p] for p in people]
        se = math.sqrt(sum((d - mean(diffs)) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
        ratio_b = mean([b["student"][p] for p in people]) / mean([b["baseline"][p] for p in people])
        ratio_m = mean([m["student"][p] for p in people]) / mean([m["baseline"][p] for p in people])
        lower = sum(d < 0 for d in diffs)
        print(f"| {key[0]} | {key[1]} | {seed} | {b['ratio']:.3f} | {m['ratio']:.3f} | {len(people)} | {ratio_b:.3f} | "
              f"{ratio_m:.3f} | {mean(diffs):+.2f} ± {se:.2f}, lower for {lower} of {len(people)} |")


if __name__ == "__main__":
    main()
