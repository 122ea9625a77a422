"""scripts/bench-train compares our C++ training steps with a Python PyTorch statement of them
(scripts/reference/train_steps.py). The comparison means something only if both train the same
model: per stage, the same trainable tensors (count) and a step that runs on both sides."""
import json
import subprocess
import sys
import os

import pytest

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "reference", "train_steps.py")
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "stages")


@pytest.mark.parametrize("stage", ["teacher-mae", "distill", "adapters", "teacher-adapters"])
def test_both_sides_train_the_same_parameters(stage, run_gaze, tmp_path):
    config = "adapters" if stage == "teacher-adapters" else stage.replace("-", "_")
    ours = run_gaze("--log-level", "warn", "bench-train", stage, "-c", f"{CONFIGS}/{config}.yaml",
                    "--steps", "1", "--warmup", "0", "train.batch_size=2", "data.input_size=[64,64]",
                    "run.threads=1", f"run.out_dir={tmp_path}")
    cpp = json.loads(ours.stdout)
    peer = subprocess.run([sys.executable, REFERENCE, stage, "--batch", "2", "--input", "64x64", "--steps", "1",
                           "--warmup", "0", "--threads", "1"], capture_output=True, text=True, check=True)
    py = json.loads(peer.stdout)
    assert cpp["impl"] == "libgaze" and py["impl"] == "pytorch"
    assert cpp["trainable_params"] == py["trainable_params"]
    expected = {"teacher-mae": 3_699_464, "distill": 620_004, "adapters": 14_434, "teacher-adapters": 191_704}[stage]
    assert cpp["trainable_params"] == expected
    for r in (cpp, py):
        assert r["batch"] == 2 and r["input"] == [64, 64] and r["images_per_s"] > 0 and r["peak_rss_mib"] > 0


def test_bench_train_refuses_bad_input(run_gaze):
    r = run_gaze("bench-train", "finetune", check=False)
    assert r.returncode == 1 and "unknown training stage 'finetune'" in r.stderr
    r = run_gaze("bench-train", "adapters", "--steps", "0", check=False)
    assert r.returncode == 1 and "--steps must be at least 1" in r.stderr
