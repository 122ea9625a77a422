"""The Python API: configs, datasets as numpy, models, stage runners, metrics, errors."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

import libgaze


def test_config_overrides_and_errors(tmp_path):
    cfg = libgaze.config(run__seed=7, model__arch="teacher", data__input_size=[64, 96])
    assert "seed: 7" in cfg.dump()
    assert cfg.origin("run.seed") == "command line 'run.seed=7'"
    assert "model.adapter.slope" in libgaze.Config.keys()
    with pytest.raises(libgaze.Error, match="did you mean 'run.seed'"):
        libgaze.config(run__sed=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  dims: abc\n")
    with pytest.raises(libgaze.Error, match=r"bad.yaml:2:9: model.dims: expected a list of integers"):
        libgaze.config(bad)
    assert issubclass(libgaze.Error, RuntimeError)


def test_datasets_are_numpy(tiny):
    root, cfg = tiny
    data = libgaze.open_dataset(root / "openeds", cfg, data__split="test")
    assert len(data) == 12
    item = data[-1]
    assert item["image"].dtype == np.uint8 and item["image"].shape == (64, 96)
    assert item["image"].flags["OWNDATA"] is False  # a view on the decoded buffer, not a copy
    assert item["gaze"].dtype == np.float32 and abs(np.linalg.norm(item["gaze"]) - 1) < 1e-6
    labels = data.labels()
    assert labels["gaze"].shape == (12, 3) and labels["blink"].dtype == bool
    assert labels["key"][0] == "1002/000"
    with pytest.raises(IndexError):
        data[12]
    aea = libgaze.open_dataset(f"aea:{root}/aea", cfg, data__eye="pair")
    assert aea[0]["image"].shape == (48, 128) and aea[0]["timestamp_us"] == 10000306
    with pytest.raises(libgaze.Error, match="dataset not found"):
        libgaze.open_dataset(root / "missing", cfg)


def test_models_predict_and_forward(tiny):
    _, cfg = tiny
    student = libgaze.build_model(cfg)
    assert (student.param_count(), student.tunable_count(), student.param_count("last_stage_adapters")) == (281174, 14434, 6680)
    teacher = libgaze.build_model(cfg, model__arch="teacher")
    assert teacher.param_count() == 3579104 and teacher.arch == "teacher"
    images = np.random.default_rng(0).integers(0, 255, (4, 48, 64), dtype=np.uint8)
    gaze, log_scale = student.predict(images)
    assert gaze.shape == (4, 3) and log_scale.shape == (4,)
    np.testing.assert_allclose(np.linalg.norm(gaze, axis=1), 1, atol=1e-5)
    single, _ = student.predict(images[0])
    np.testing.assert_allclose(single[0], gaze[0], atol=1e-6)
    out, stages = student.forward(np.zeros((2, 3, 32, 64), np.float32), stages=True)
    assert out.shape == (2, 4) and [s.shape[1] for s in stages] == [40, 20, 40, 80]
    with pytest.raises(libgaze.Error, match="expected float N x 3"):
        student.forward(np.zeros((2, 1, 32, 64), np.float32))


def test_input_is_the_grey_image_resampled_and_normalised_with_imagenet_statistics(tiny):
    # The documented contract (datasets/preprocess.h): the grey image in all three channels, each
    # normalised with ImageNet's mean and standard deviation; other sizes resampled to the input size.
    _, cfg = tiny
    model = libgaze.build_model(cfg)
    images = np.random.default_rng(2).integers(0, 255, (2, 32, 64), dtype=np.uint8)
    x = model.input(images)
    assert x.shape == (2, 3, 32, 64) and x.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (images[:, None] / 255 - mean[None, :, None, None]) / std[None, :, None, None]
    np.testing.assert_allclose(x, expected, atol=1e-5)
    assert model.input(np.zeros((64, 128), np.uint8)).shape == (1, 3, 32, 64)
    with pytest.raises(libgaze.Error, match="input: expected uint8 images"):
        model.input(np.zeros((1, 1, 32, 64), np.uint8))


def test_forward_is_the_network_predict_runs_on_every_head(tiny):
    # forward runs the stages, then the head on the last two stages' maps; predict runs the whole
    # network on Model.input. The heads that read more than the pooled last stage (a grid of
    # cells, key points on the third stage) must give the same numbers both ways.
    _, cfg = tiny
    images = np.random.default_rng(1).integers(0, 255, (3, 32, 64), dtype=np.uint8)  # at the input size
    for head in ({}, {"model__head__grid": [2, 2]}, {"model__head__keypoints": 4}):
        model = libgaze.build_model(cfg, **head)
        gaze, log_scale = model.predict(images)
        out, stages = model.forward(model.input(images), stages=True)
        assert len(stages) == 4, head
        np.testing.assert_allclose(out[:, :3] / np.linalg.norm(out[:, :3], axis=1, keepdims=True), gaze,
                                   atol=1e-5, err_msg=str(head))
        np.testing.assert_allclose(out[:, 3], log_scale, rtol=1e-5, atol=1e-6, err_msg=str(head))
    heads = [libgaze.build_model(cfg, **head).param_count("head")
             for head in ({}, {"model__head__grid": [2, 2]}, {"model__head__keypoints": 4})]
    assert heads[0] < heads[1] and heads[0] < heads[2], heads  # the grid and the key points were built


def test_export_onnx_checked_by_onnx_and_run_by_onnxruntime(tiny, tmp_path):
    import onnx  # Debian python3-onnx, installed by scripts/setup
    _, cfg = tiny
    model = libgaze.build_model(cfg)
    path = tmp_path / "student.onnx"
    model.export_onnx(str(path))
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["image"] and [o.name for o in proto.graph.output] == ["output"]
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 64)).astype(np.float32)
    x.tofile(tmp_path / "input.f32")
    script = Path(__file__).resolve().parents[3] / "scripts" / "ort" / "ort_run.js"
    run = subprocess.run(["node", str(script), str(path), str(tmp_path / "input.f32"), "2,3,32,64",
                          str(tmp_path / "output.f32")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = np.fromfile(tmp_path / "output.f32", np.float32).reshape(2, 4)
    np.testing.assert_allclose(got, model.forward(x), atol=1e-4)
    with pytest.raises(libgaze.Error, match="no-such-dir"):
        model.export_onnx(str(tmp_path / "no-such-dir" / "m.onnx"))


def test_torch_interop(tiny):
    torch = pytest.importorskip("torch")
    _, cfg = tiny
    model = libgaze.build_model(cfg)
    gaze, scale = model.predict(torch.zeros((2, 48, 64), dtype=torch.uint8))
    assert isinstance(gaze, torch.Tensor) and gaze.shape == (2, 3)
    err = libgaze.angular_error(torch.tensor([[0.0, 0, 1]]), torch.tensor([[0.0, 1, 1]]))
    assert isinstance(err, torch.Tensor) and abs(float(err[0]) - 45.0) < 1e-9


def test_train_baseline_at_the_published_learning_rate(tiny, tmp_path):
    root, cfg = tiny
    cfg = cfg.override([f"run.out_dir={tmp_path}", "train.batch_size=4", "train.steps=1", "data.workers=1",
                        "model.arch=rtgene", "data.input_size=[36,60]"])
    published = libgaze.train("baseline", cfg, data__source=f"{root}/openeds", run__name="published")
    given = libgaze.train("baseline", cfg, data__source=f"{root}/openeds", run__name="given", train__lr=0.002)
    # RT-Gene's published 1e-4 where the config sets none (gaze train baseline and gaze run do the same).
    assert "  lr: 0.0001  #" in (tmp_path / "published" / "config.yaml").read_text()
    assert "  lr: 0.002  #" in (tmp_path / "given" / "config.yaml").read_text()
    assert published["model"].endswith("model.h5") and given["model"].endswith("model.h5")


def test_train_evaluate_personalize(tiny, tmp_path):
    root, cfg = tiny
    cfg = cfg.override([f"run.out_dir={tmp_path}", "train.batch_size=4", "train.steps=4", "train.log_every=2",
                        "data.workers=1"])
    base = tmp_path / "student.h5"
    libgaze.build_model(cfg).save(str(base))
    result = libgaze.train("adapters", cfg, data__source=f"{root}/openeds", data__split="train",
                           train__init=str(base), run__name="py_adapters")
    assert result["model"].endswith("model.h5") and "loss" in result["metrics"]
    summary = libgaze.evaluate(result["model"], f"{root}/openeds", cfg, data__split="validation")
    assert summary["frames"] + summary["blink_frames"] == 4 and summary["mean_deg"] > 0
    users = libgaze.personalize(result["model"], f"{root}/openeds", tmp_path / "users", cfg, data__split="test",
                                personalize__steps=3, personalize__k_curve=[0, 5], personalize__replay=8)
    assert len(users["users"]) == 1 and set(users["k_curve"]) == {0, 5}
    shots = users["users"][0]["calibration"]  # the k = 5 frames it calibrated on, dataset indices
    assert len(shots) == 5 and len(set(shots)) == 5 and all(isinstance(i, int) and i >= 0 for i in shots)
    # One calibration at k is part of the user's whole run (which adds evaluation and k = 0).
    assert 0 < users["calibrate_seconds_per_user"] < users["seconds_per_user"]
    model = libgaze.load_model(result["model"], cfg)
    model.apply_user_adapter(users["users"][0]["adapter_file"])
    with pytest.raises(libgaze.Error, match="another base model"):
        libgaze.load_model(str(base), cfg).apply_user_adapter(users["users"][0]["adapter_file"])

    # The fixed-point kernel: written, measured against the float model, a user's blob beside it.
    kernel = tmp_path / "kernel"
    report = libgaze.export_kernel(result["model"], kernel, f"{root}/openeds", cfg=cfg, data__split="validation",
                                   users=[users["users"][0]["adapter_file"]], export__calibration_frames=4,
                                   export__eval_frames=2)
    assert (kernel / "dftgaze.cpp").exists() and (kernel / "dftgaze.h").exists()
    assert len(report["blobs"]) == 1 and report["eval_frames"] == 2 and report["macs"] > 0
    # A 4-step model calibrated on 4 frames: about a degree (1.41 on the renderer since its limbus
    # fix); a broken quantiser costs tens. The kernel's accuracy is measured in the C++ e2e tests.
    assert 0 <= report["float_vs_fixed_mean_deg"] < 5.0
    with pytest.raises(libgaze.Error, match="missing.h5"):
        libgaze.export_kernel(tmp_path / "missing.h5", kernel, f"{root}/openeds", cfg=cfg)
    # A wearer calibrated inside the kernel, as a device would (dftgaze_personalize): the blob has
    # the kernel's user-blob size; bad gazes are refused before anything is built or written.
    test = libgaze.open_dataset(f"{root}/openeds", cfg, data__split="test")
    eyes = np.stack([test[i]["image"] for i in range(5)])
    gazes = np.stack([test[i]["gaze"] for i in range(5)]).astype(np.float32)
    device = libgaze.kernel_personalize(kernel, eyes, gazes, tmp_path / "device.gzu", steps=5, seed=1)
    assert device["k"] == 5 and device["steps"] == 5 and device["personalize_ms"] > 0
    assert device["blob_bytes"] == report["user_blob_bytes"] == (tmp_path / "device.gzu").stat().st_size
    assert device["train_head"] == 0
    # With the head's Linear trained too: the same blob size, a different blob.
    head = libgaze.kernel_personalize(kernel, eyes, gazes, tmp_path / "head.gzu", steps=5, seed=1, train_head=True)
    assert head["train_head"] == 1 and head["blob_bytes"] == device["blob_bytes"]
    assert (tmp_path / "head.gzu").read_bytes() != (tmp_path / "device.gzu").read_bytes()
    with pytest.raises(libgaze.Error, match="unit length"):
        libgaze.kernel_personalize(kernel, eyes, gazes * 2, tmp_path / "bad.gzu")
    assert not (tmp_path / "bad.gzu").exists()
    # The bench's cycle model is named through to C++ (and refused before any work when unknown).
    with pytest.raises(libgaze.Error, match="the one cycle model is pi4"):
        libgaze.bench(result["model"], f"{root}/openeds", kernel_dir=kernel, frames=2, model="pi5", cfg=cfg)


def test_angular_error_numbers():
    err = libgaze.angular_error(np.array([[1.0, 0, 0], [0, 0, 2]]), np.array([[0.0, 1, 0], [0, 0, 1]]))
    np.testing.assert_allclose(err, [90.0, 0.0])
    with pytest.raises(libgaze.Error, match="two N x 3 arrays"):
        libgaze.angular_error(np.zeros((2, 2)), np.zeros((2, 2)))
