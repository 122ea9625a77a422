"""What a held-out person's offset goes with: the renderer's draws for them (people.csv, written
by `gaze synth` since session 33) against their per-person offset (eval_validation.json's
participants, `gaze eval`). The analysis of docs/results/conditions/README.md, session 33.

    python3 offsets_vs_draws.py <people.csv> <eval_validation.json> <training people> [--json out.json]

Each draw is taken as its distance from the training people's mean, in their standard deviations
(a person unlike everyone trained on), and correlated (Pearson) with the magnitude of the person's
offset; kappa also as the 2-D distance in degrees. A linear model of the offset on every draw is
scored leave-one-out (R^2 below 0: it predicts worse than the mean).
"""
import argparse
import csv
import json

import numpy as np

DRAWS = ["kappa_yaw_deg", "kappa_pitch_deg", "eye_offset_x_mm", "eye_offset_y_mm", "eye_distance_mm",
         "eyeball_radius_mm", "cornea_radius_mm", "iris_radius_mm", "pupil_radius_mm", "lid_open", "iris_brightness"]


def main():
    a = argparse.ArgumentParser()
    a.add_argument("people_csv")
    a.add_argument("eval_json")
    a.add_argument("training_people", type=int, help="the first N of the train split were trained on")
    a.add_argument("--json")
    args = a.parse_args()
    rows = {int(r["participant"]): r for r in csv.DictReader(open(args.people_csv))}
    held_out = json.load(open(args.eval_json))["participants"]
    train = [i for i in sorted(rows) if rows[i]["split"] == "train"][:args.training_people]
    T = np.array([[float(rows[i][k]) for k in DRAWS] for i in train])
    ids = sorted(int(p) for p in held_out)
    X = np.array([[float(rows[i][k]) for k in DRAWS] for i in ids])
    offset = np.array([held_out[str(i)]["offset_deg"] for i in ids])
    distance = np.abs(X - T.mean(0)) / np.where(T.std(0) > 0, T.std(0), 1)
    kappa = np.hypot(X[:, 0] - T[:, 0].mean(), X[:, 1] - T[:, 1].mean())
    r = {k: float(np.corrcoef(distance[:, j], offset)[0, 1]) for j, k in enumerate(DRAWS)}
    r["kappa_distance_deg"] = float(np.corrcoef(kappa, offset)[0, 1])
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    A = np.c_[np.ones(len(Z)), Z]
    predicted = np.empty(len(offset))
    for i in range(len(offset)):
        keep = np.arange(len(offset)) != i
        w, *_ = np.linalg.lstsq(A[keep], offset[keep], rcond=None)
        predicted[i] = A[i] @ w
    loo_r2 = 1 - np.sum((offset - predicted) ** 2) / np.sum((offset - offset.mean()) ** 2)
    out = {"people": len(ids), "offset_mean_deg": float(offset.mean()),
           "kappa_distance_mean_deg": float(kappa.mean()), "leave_one_out_r2": float(loo_r2), "pearson_r": r}
    print(f"{len(ids)} people: offset {offset.mean():.2f} deg on average, their kappa {kappa.mean():.2f} deg "
          f"from the training people's; a linear model of every draw, leave-one-out R^2 {loo_r2:.2f}")
    for k, v in sorted(r.items(), key=lambda kv: -abs(kv[1])):
        print(f"  {k:22s} r {v:+.2f}")
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
