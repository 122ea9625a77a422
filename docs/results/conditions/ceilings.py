#!/usr/bin/env python3
"""The student's adapters stage given more steps, every weight, and 48 labelled people (session 36).

Reads the `gaze eval` files in ceilings_seed2/<condition>/ (`people12_<name>.json`: trained on the
condition's 12 people, scored on its 60 held-out people; `people48_<name>.json`: trained on 48,
scored on people 48-71, whom both renders hold out with the same frames) and the mean-gaze
baseline's per-person errors from conditions_people80_grid_seed2.json. Prints one Markdown row per
screened student: the mean over people and its ratio to the baseline's, and the per-person
difference to the run's own student (`people12_base`) on people 48-71.

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
    return {k: v["mean_deg"] for k, v in json.load(open(path))["participants"].items()}


def main():
    summary = json.load(open(os.path.join(HERE, "conditions_people80_grid_seed2.json")))
    baseline = {c["name"]: c["datasets"]["openeds"]["baseline_people_deg"] for c in summary["conditions"]}
    late = [str(i) for i in range(48, 72)]
    print("| condition | labelled people | steps | what trains | all 60 held out (/ baseline) | people 48-71 (/ baseline) | "
          "- the run's student on 48-71, per person |")
    print("|---|---|---|---|---|---|---|")
    for cond in sorted(os.listdir(os.path.join(HERE, "ceilings_seed2"))):
        folder = os.path.join(HERE, "ceilings_seed2", cond)
        run = per_person(os.path.join(folder, "people12_base.json"))
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
