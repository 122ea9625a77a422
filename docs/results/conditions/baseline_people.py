#!/usr/bin/env python3
"""Adds each held-out person's mean-gaze baseline error to a conditions summary made before
session 34 (`baseline_people_deg` per cell), from the packs of a run of the same conditions, so
that `gaze reproduce conditions --merge` gives student / baseline's standard error paired person
by person (report.h people_ratio_standard_error) instead of with the baseline held fixed.

    baseline_people.py <runs folder> <summary.json> [<out.json>]

The packs are the data's, the same for every training seed (they are rendered and split with
run.seed), so any seed's run folder serves. As the pipeline computes it (trainers/evaluate.cpp
mean_gaze_baseline): the mean of the training split's gaze over the first data.train_people
participant ids (blinks included), its angle to every open-eye validation frame, averaged per
participant. Refuses a cell whose frame-weighted mean differs from the summary's baseline;
leaves conditions without a run in <runs folder> as they were.
"""
import json
import os
import sys

import h5py
import numpy as np


def baseline_people(pack, train_people):
    with h5py.File(pack, "r") as f:
        names = f.attrs["split_names"]
        names = (names.decode() if isinstance(names, bytes) else str(names)).split(",")
        split = f["split"][:]
        participant = f["participant"][:]
        gaze = f["gaze"][:].astype(np.float64)
        blink = f["blink"][:].astype(bool)
    train = split == names.index("train")
    if train_people > 0:
        keep = np.unique(participant[train])[:train_people]
        train &= np.isin(participant, keep)
    mean = gaze[train].sum(axis=0)
    mean /= np.linalg.norm(mean)
    held_out = (split == names.index("validation")) & ~blink
    unit = gaze[held_out] / np.linalg.norm(gaze[held_out], axis=1, keepdims=True)
    errors = np.degrees(np.arccos(np.clip(unit @ mean, -1.0, 1.0)))
    ids = participant[held_out]
    people = {str(int(p)): float(errors[ids == p].mean()) for p in np.unique(ids)}
    return people, float(errors.mean())


def run_train_people(pipeline_yaml):
    """data.train_people as the run's resolved config records it (the one key of that name)."""
    for line in open(pipeline_yaml):
        if line.strip().startswith("train_people:"):
            return int(line.split(":", 1)[1].split("#", 1)[0])
    sys.exit(f"{pipeline_yaml}: no train_people")


def main():
    runs, summary_path = sys.argv[1], sys.argv[2]
    out_path = sys.argv[3] if len(sys.argv) > 3 else summary_path
    summary = json.load(open(summary_path))
    for condition in summary["conditions"]:
        folder = f"{runs}/conditions_{condition['name']}"
        if not all(os.path.exists(f"{folder}/packs/{d}.done") for d in condition["datasets"]):
            print(f"{condition['name']}: no run in {runs}: left as it was")
            continue
        train_people = run_train_people(f"{folder}/pipeline.yaml")
        for dataset, cell in condition["datasets"].items():
            pack = f"{folder}/packs/{dataset}.h5"
            people, mean = baseline_people(pack, train_people)
            if abs(mean - cell["mean_gaze_baseline_deg"]) > 1e-4 * cell["mean_gaze_baseline_deg"]:
                sys.exit(f"{pack}: baseline {mean:.5f} where {summary_path} has "
                         f"{cell['mean_gaze_baseline_deg']:.5f} ({condition['name']}/{dataset}): not the same data")
            cell["baseline_people_deg"] = people
            print(f"{condition['name']}/{dataset}: {len(people)} people, baseline {mean:.4f}")
    with open(out_path, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
