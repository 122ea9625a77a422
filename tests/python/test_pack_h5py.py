"""`gaze pack` output opens in h5py with the documented layout and checksums."""
import h5py
import numpy as np


def test_pack_layout_in_h5py(tmp_path, run_gaze):
    run_gaze("synth", f"synth.out_dir={tmp_path}", "synth.layouts=[aea]", "synth.participants=3",
             "synth.aea_frames=4", "synth.aea_size=[48,128]")
    out = tmp_path / "aea.h5"
    run_gaze("pack", f"aea:{tmp_path}/aea", "-o", out)
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == b"libgaze-pack"
        assert f.attrs["split_names"] == b"train,validation,test"
        n = f["images"].shape[0]
        assert n == 3 * 4 * 2  # 3 recordings x 4 frames x both eyes
        assert f["images"].shape[1:] == (48, 64)
        assert f["images"].fletcher32 and f["gaze"].fletcher32
        assert f["images"].chunks == (1, 48, 64)
        gaze = f["gaze"][()]
        np.testing.assert_allclose(np.linalg.norm(gaze, axis=1), 1.0, atol=1e-6)
        keys = [k.decode() for k in f["keys"][()]]
        assert keys[0] == "synth_p00_rec1/10000306/L" and keys[1].endswith("/R")
        # AEA protocol: whole recordings go to one split.
        split, participant = f["split"][()], f["participant"][()]
        for p in set(participant):
            assert len(set(split[participant == p])) == 1
