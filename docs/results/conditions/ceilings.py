#!/usr/bin/env python3
"""What limits the grid pair's misses on seed 2: budget, trainable weights, labelled people, or unlabelled images.

Reads the `gaze eval` files kept in ceilings_seed2/<condition>/ and the mean-gaze baseline's
per-person errors from conditions_people80_grid_seed2.json, and prints three Markdown tables:

1. OpenEDS, the student's adapters stage again (session 36): `people12_<name>.json` trained on the
   condition's 12 people and scored on its 60 held-out people; `people48_<name>.json` trained on 48
   and scored on people 48-71, whom both renders hold out with the same frames (the run's own
   student scored on the 48-people pack, `people48_base`, must match `people12_base` there).
2. OpenEDS, the label-free stages (FCMAE, distillation) on 48 people's images, labels kept at 12
   (session 37): `people48_<model>_<name>.json`, every one scored on people 48-71; the student's
   adapters stage retrained from the run's own distilled student on the 48-people pack's first 12
   people (`people48_student_again`) must reproduce the run's student person by person, which
   shows the two renders give those 12 people the same frames.
3. AEA, the student's adapters stage again (session 37): `aea_<name>.json`, scored on the run's 8
   held-out recordings.

Table 1 leaves out the rows a condition was not screened with; in tables 2 and 3 a condition
screened at all must have every row. Each row is a mean over people (each person weighs the same; the summaries weigh frames, so their
ratios differ in the third digit), that mean's ratio to the baseline's over the same people, and
per person the row minus the run's own model (mean ± standard error, and for how many it is lower).

    python3 ceilings.py
"""
import json
import math
import os
import statistics as st

HERE = os.path.dirname(os.path.abspath(__file__))
LATE = [str(i) for i in range(48, 72)]  # the people both OpenEDS renders hold out alike

ADAPTERS = [  # file, labelled people, steps, what trains
    ("people12_base", "12", "300", "adapters (the run's)"),
    ("people12_steps600", "12", "600", "adapters"),
    ("people12_steps1200", "12", "1200", "adapters"),
    ("people12_all", "12", "300", "every weight"),
    ("people12_all1200", "12", "1200", "every weight"),
    ("people48_p48", "48", "300", "adapters"),
    ("people48_p48_1200", "48", "1200", "adapters"),
    ("people48_p48_all1200", "48", "1200", "every weight"),
]
LABEL_FREE = [  # file, model, whose images the label-free stages read, the run's model to compare with
    ("people48_teacher_base", "teacher", "12 people (the run's)", "people48_teacher_base"),
    ("people48_teacher_mae48", "teacher", "48 people (FCMAE)", "people48_teacher_base"),
    ("people48_base", "student", "12 people (the run's)", "people48_base"),
    ("people48_student_distill48", "student", "48 people (distillation; the run's teacher)", "people48_base"),
    ("people48_student_mae48", "student", "48 people (FCMAE and distillation)", "people48_base"),
]
AEA = [  # file, labelled recordings, steps, what trains
    ("aea_base", "12", "300", "adapters (the run's)"),
    ("aea_steps1200", "12", "1200", "adapters"),
    ("aea_all1200", "12", "1200", "every weight"),
    ("aea_p48", "48", "300", "adapters"),
    ("aea_p48_1200", "48", "1200", "adapters"),
    ("aea_p48_all1200", "48", "1200", "every weight"),
]


def people_means(evaluation):
    """A `gaze eval` file's mean error per held-out person (or recording), by id."""
    return {k: v["mean_deg"] for k, v in evaluation["participants"].items()}


def per_person(path):
    with open(path) as f:
        return people_means(json.load(f))


def scored(p, baseline, ids):
    """'mean (mean / baseline's mean)' over `ids`."""
    mean = st.mean(p[i] for i in ids)
    return f"{mean:.2f} ({mean / st.mean(baseline[i] for i in ids):.3f})"


def person_difference(p, run, ids):
    """The row minus the run's model person by person over `ids`: (mean, standard error, how many lower)."""
    diff = [p[i] - run[i] for i in ids]
    return st.mean(diff), st.stdev(diff) / math.sqrt(len(diff)), sum(d < 0 for d in diff)


def paired(p, run, ids):
    """person_difference as a table cell."""
    mean, se, lower = person_difference(p, run, ids)
    return f"{mean:+.2f} ± {se:.2f}, lower for {lower} of {len(ids)}"


def same_scores(a, b, ids, what):
    assert all(abs(a[i] - b[i]) < 1e-6 for i in ids), what


def main():
    with open(os.path.join(HERE, "conditions_people80_grid_seed2.json")) as f:
        summary = json.load(f)
    baseline = {
        (c["name"], d): c["datasets"][d]["baseline_people_deg"] for c in summary["conditions"] for d in ("openeds", "aea")
    }
    conditions = sorted(os.listdir(os.path.join(HERE, "ceilings_seed2")))
    files = {c: os.path.join(HERE, "ceilings_seed2", c) for c in conditions}

    def load(cond, name, required=False):
        path = os.path.join(files[cond], name + ".json")
        return per_person(path) if required or os.path.exists(path) else None

    print("| condition | labelled people | steps | what trains | all 60 held out (/ baseline) | people 48-71 (/ baseline) | "
          "minus the run's student, people 48-71 |")
    print("|---|---|---|---|---|---|---|")
    for cond in conditions:
        base, run = baseline[(cond, "openeds")], load(cond, "people12_base", required=True)
        other = load(cond, "people48_base")
        if other:  # the two renders hold out people 48-71 with the same frames
            same_scores(other, run, LATE, f"{cond}: people 48-71 differ between the renders")
        for name, people, steps, what in ADAPTERS:
            p = load(cond, name)
            if p is None:
                continue
            all60 = scored(p, base, list(p)) if len(p) == 60 else "-"
            change = "-" if name == "people12_base" else paired(p, run, LATE)
            print(f"| {cond} | {people} | {steps} | {what} | {all60} | {scored(p, base, LATE)} | {change} |")

    print()
    print("| condition | model | the label-free stages read | people 48-71 (/ baseline) | minus the run's model, people 48-71 |")
    print("|---|---|---|---|---|")
    for cond in conditions:
        again = load(cond, "people48_student_again")
        if again is None:
            continue
        same_scores(again, load(cond, "people48_base"), LATE, f"{cond}: the retrained student differs from the run's")
        for name, model, images, reference in LABEL_FREE:
            p = load(cond, name, required=True)
            change = "-" if name == reference else paired(p, load(cond, reference, required=True), LATE)
            print(f"| {cond} | {model} | {images} | {scored(p, baseline[(cond, 'openeds')], LATE)} | {change} |")

    print()
    print("| condition | labelled recordings | steps | what trains | 8 held out (/ baseline) | minus the run's student |")
    print("|---|---|---|---|---|---|")
    for cond in conditions:
        run = load(cond, "aea_base")
        if run is None:
            continue
        for name, recordings, steps, what in AEA:
            p, ids = load(cond, name, required=True), list(run)
            change = "-" if name == "aea_base" else paired(p, run, ids)
            print(f"| {cond} | {recordings} | {steps} | {what} | {scored(p, baseline[(cond, 'aea')], ids)} | {change} |")


if __name__ == "__main__":
    main()
