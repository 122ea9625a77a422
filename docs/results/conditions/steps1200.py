#!/usr/bin/env python3
"""The grid student's adapters stage at 1200 steps instead of 300, screened on seeds 0 and 2 (session 37).

Every condition run keeps its stages' checkpoints, so the student's adapters stage was trained
again from each run's own distilled student with `train.steps=1200` and nothing else changed, and
both students were scored on the run's held-out people (`gaze eval ... data.split=validation`).
Reads steps1200/s<seed>/<condition>/<dataset>_{base,1200}.json and each seed's summary
(conditions_people80_grid_seed<seed>[_people_resolution].json) for the mean-gaze baseline and the
teacher; checks that the run's student re-scored here is the summary's to 1e-9 degrees and that
both students were scored on the same people and frames (a missing file is an error). Prints a
Markdown table per cell and seed (student / baseline and / teacher, frames weighted as the
summaries weigh them; the change per person, mean over people ± standard error) and, for either
step count, the cells where the 0.5x and 1.25x checks pass on every seed.

    python3 steps1200.py
"""
import json
import os

from ceilings import people_means, person_difference

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARIES = ["conditions_people80_grid_seed{}.json", "conditions_people80_grid_seed{}_people_resolution.json"]
ORDER = ["demo", "anatomy", "camera", "illumination", "people", "resolution"]


def load(path):
    with open(path) as f:
        return json.load(f)


def summary_cells(seed):
    """(condition, dataset) -> the summary's cell for that seed."""
    cells = {}
    for pattern in SUMMARIES:
        for c in load(os.path.join(HERE, pattern.format(seed)))["conditions"]:
            for d, cell in c["datasets"].items():
                cells[(c["name"], d)] = cell
    return cells


def main():
    root = os.path.join(HERE, "steps1200")
    seeds = sorted(int(s[1:]) for s in os.listdir(root))
    print("| condition | dataset | seed | 300 steps (the run's): / baseline | 1200 steps: / baseline | / teacher | "
          "1200 minus 300 per person (°) |")
    print("|---|---|---|---|---|---|---|")
    passes = {}
    cells = {seed: summary_cells(seed) for seed in seeds}
    for seed in seeds:  # every screened folder must be a known condition with both files per dataset
        for cond in os.listdir(os.path.join(root, f"s{seed}")):
            assert cond in ORDER, f"steps1200/s{seed}/{cond}: not a condition this script knows"
    for cond in ORDER:
        for d in ("openeds", "aea"):
            for seed in seeds:
                folder = os.path.join(root, f"s{seed}", cond)
                if not os.path.isdir(folder):
                    continue
                cell = cells[seed][(cond, d)]
                base, longer = load(os.path.join(folder, f"{d}_base.json")), load(os.path.join(folder, f"{d}_1200.json"))
                assert abs(base["mean_deg"] - cell["student_deg"]) < 1e-9, f"seed {seed} {cond}/{d}: not the run's student"
                assert base["participants"].keys() == longer["participants"].keys(), f"seed {seed} {cond}/{d}: other people"
                assert base["frames"] == longer["frames"], f"seed {seed} {cond}/{d}: other frames"
                baseline, teacher = cell["mean_gaze_baseline_deg"], cell["teacher_deg"]
                change, se, _ = person_difference(people_means(longer), people_means(base), list(base["participants"]))
                for steps, student in (("300", base), ("1200", longer)):
                    ok = student["mean_deg"] <= 0.5 * baseline and student["mean_deg"] <= 1.25 * teacher
                    passes.setdefault(steps, {}).setdefault((cond, d), []).append(ok)
                    assert steps != "300" or ok or not cell["passes"], f"seed {seed} {cond}/{d}: the summary's checks differ"
                print(f"| {cond} | {d} | {seed} | {base['mean_deg'] / baseline:.3f} | {longer['mean_deg'] / baseline:.3f} | "
                      f"{longer['mean_deg'] / teacher:.3f} | {change:+.2f} ± {se:.2f} |")
    print()
    for steps, screened in passes.items():
        both = [f"{c} / {d}" for (c, d), ok in screened.items() if len(ok) == len(seeds) and all(ok)]
        print(f"At {steps} steps the 0.5x-baseline and 1.25x-teacher checks pass on seeds {', '.join(map(str, seeds))} "
              f"in {len(both)} of {len(screened)} cells: {', '.join(both)}.")


if __name__ == "__main__":
    main()
