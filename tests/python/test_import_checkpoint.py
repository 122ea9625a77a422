"""`gaze import-checkpoint` on a real torch.save() file; the result opens in h5py."""
import h5py
import numpy as np
import torch

from convnextv2_official import write_fixture


def test_import_writes_every_official_tensor_exactly(tmp_path, run_gaze):
    model = write_fixture(str(tmp_path))
    out = tmp_path / "teacher.h5"
    result = run_gaze("import-checkpoint", tmp_path / "official.pt", "-o", out)
    assert "imported 138 tensors" in result.stdout
    assert "head.weight (shape [1000, 320]" in result.stdout

    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == b"libgaze-checkpoint"
        assert f.attrs["stage"] == b"import"
        assert f.attrs["step"] == 0
        assert b"arch: teacher" in f["config"][()]
        stored = f["model"]
        for name, tensor in model.state_dict().items():
            if name.startswith("head."):
                assert stored[name].shape == ((4, 320) if name == "head.weight" else (4,))
                continue
            np.testing.assert_array_equal(stored[name][()], tensor.numpy(), err_msg=name)
        # Our adapters start as the identity: zero up-projection.
        assert not stored["stages.3.1.adapter.up.weight"][()].any()
        total = sum(stored[k].size for k in stored if "running" not in k and "num_batches" not in k)
        assert total == 3_579_104


def test_import_of_a_plain_state_dict_and_a_wrong_model(tmp_path, run_gaze):
    # A bare state dict (no {"model": ...} wrapper) also imports.
    sd = {"downsample_layers.0.0.weight": torch.randn(40, 3, 4, 4)}
    torch.save(sd, tmp_path / "bare.pt")
    result = run_gaze("import-checkpoint", tmp_path / "bare.pt", "-o", tmp_path / "bare.h5", "--allow-partial")
    assert "imported 1 tensors" in result.stdout

    # Nothing fits: a clear error, exit 1, nothing written.
    torch.save({"model": {"fc.weight": torch.randn(3, 3)}}, tmp_path / "other.pt")
    bad = run_gaze("import-checkpoint", tmp_path / "other.pt", "-o", tmp_path / "other.h5", check=False)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "no tensor fits the teacher model" in bad.stderr
    assert not (tmp_path / "other.h5").exists()

    # Not a state dict at all.
    torch.save([1, 2, 3], tmp_path / "list.pt")
    bad = run_gaze("import-checkpoint", tmp_path / "list.pt", "-o", tmp_path / "l.h5", check=False)
    assert bad.returncode == 1 and "no state dict found (top level is a list)" in bad.stderr


def test_import_of_the_sparse_fcmae_layout_fills_the_whole_encoder(tmp_path, run_gaze):
    # What ConvNeXt-V2's main_pretrain.py saves (Minkowski kernels, .ln/.linear wrappers,
    # decoder, optimizer and args beside the weights).
    model = write_fixture(str(tmp_path), layout="fcmae-sparse")
    out = tmp_path / "teacher.h5"
    result = run_gaze("import-checkpoint", tmp_path / "official.pt", "-o", out)
    assert "imported 136 tensors; skipped 15" in result.stdout
    assert "fresh encoder tensor" not in result.stdout
    with h5py.File(out, "r") as f:
        stored = f["model"]
        for name, tensor in model.state_dict().items():
            if name.startswith(("head.", "norm.")):
                continue
            np.testing.assert_array_equal(stored[name][()], tensor.numpy(), err_msg=name)


def test_a_partial_import_fails_unless_allowed(tmp_path, run_gaze):
    write_fixture(str(tmp_path), layout="fcmae")
    sd = torch.load(tmp_path / "official.pt")["model"]
    torch.save({"model": {k: v for k, v in sd.items() if not k.startswith("stages.3.")}}, tmp_path / "cut.pt")
    bad = run_gaze("import-checkpoint", tmp_path / "cut.pt", "-o", tmp_path / "cut.h5", check=False)
    assert bad.returncode == 1 and "would leave 20 encoder tensors at random initialisation" in bad.stderr
    assert not (tmp_path / "cut.h5").exists()
    ok = run_gaze("import-checkpoint", tmp_path / "cut.pt", "-o", tmp_path / "cut.h5", "--allow-partial")
    assert "fresh encoder tensor stages.3.1.pwconv2.bias" in ok.stdout
