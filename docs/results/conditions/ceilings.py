#!/usr/bin/env python3
"""The student's adapters stage given more steps, every weight, and 48 labelled people (session 36).

Reads the `gaze eval` files in ceilings_seed2/<condition>/ (`people12_<name>.json`: trained on the
condition's 12 people, scored on its 60 held-out people; `people48_<name>.json`: trained on 48,
scored on people 48-71, whom both renders hold out with the same frames, which `people48_base`,
the run's own student scored on the 48-people pack, proves: it must match `people12_base` there)
and the mean-gaze baseline's per-person errors from conditions_people80_grid_seed2.json. Prints a
Markdown table, one row per screened student (the run's own first): its mean over people (each
person weighs the same; the summaries weigh frames, so their ratios differ in the third digit) and
that mean's ratio to the baseline's over the same people, and per person on people 48-71 the
student minus the run's student (mean ± standard error, and for how many it is lower).

    python3 ceilings.py
"""
import json
import math
import os
import statistics as st

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = [
    ("people12_base", "12", "300", "adapters (the run's)"),
    ("people12_steps600", "12", "600", "adapters"),
    ("people12_steps1200", "12", "1200", "adapters"),
    ("people12_all", "12", "300", "every weight"),
    ("people12_all1200", "12", "1200", "every weight"),
    ("people48_p48", "48", "300", "adapters"),
    ("people48_p48_1200", "48", "1200", "adapters"),
    ("people48_p48_all1200", "48", "1200", "every weight"),
]


def per_person(path):
    with open(path) as f:
        return {k: v["mean_deg"] for k, v in json.load(f)["participants"].items()}


def main():
    with open(os.path.join(HERE, "conditions_people80_grid_seed2.json")) as f:
        summary = json.load(f)
    baseline = {c["name"]: c["datasets"]["openeds"]["baseline_people_deg"] for c in summary["conditions"]}
    late = [str(i) for i in range(48, 72)]
    print("| condition | labelled people | steps | what trains | all 60 held out (/ baseline) | people 48-71 (/ baseline) | "
          "minus the run's student, people 48-71 |")
    print("|---|---|---|---|---|---|---|")
    for cond in sorted(os.listdir(os.path.join(HERE, "ceilings_seed2"))):
        folder = os.path.join(HERE, "ceilings_seed2", cond)
        run = per_person(os.path.join(folder, "people12_base.json"))
        same_people = os.path.join(folder, "people48_base.json")
        if os.path.exists(same_people):  # the two renders hold out people 48-71 with the same frames
            other = per_person(same_people)
            assert all(abs(other[i] - run[i]) < 1e-6 for i in late), f"{cond}: people 48-71 differ between the renders"
        b60, b48 = st.mean(baseline[cond].values()), st.mean(baseline[cond][i] for i in late)
        for name, people, steps, what in ROWS:
            path = os.path.join(folder, name + ".json")
            if not os.path.exists(path):
                continue
            p = per_person(path)
            all60 = f"{st.mean(p.values()):.2f} ({st.mean(p.values()) / b60:.3f})" if len(p) == 60 else "-"
            on48 = st.mean(p[i] for i in late)
            diff = [p[i] - run[i] for i in late]
            paired = "-"
            if any(diff):
                se = st.stdev(diff) / math.sqrt(len(diff))
                paired = f"{st.mean(diff):+.2f} ± {se:.2f}, lower for {sum(d < 0 for d in diff)} of {len(diff)}"
            print(f"| {cond} | {people} | {steps} | {what} | {all60} | {on48:.2f} ({on48 / b48:.3f}) | {paired} |")


if __name__ == "__main__":
    main()
