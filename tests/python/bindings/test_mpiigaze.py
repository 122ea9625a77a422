"""MPIIGaze files the way public code reads and writes them: scipy.io, which
hysts/pytorch_mpiigaze and GazeHub use on the real dataset's Data/Normalized/pXX/dayYY.mat.

Files written by scipy (an independent MATLAB writer) must load through our loader, and the
files gaze synth writes must load through scipy as those readers index them."""
from pathlib import Path

import numpy as np
import scipy.io
from scipy.spatial.transform import Rotation

import libgaze


def eye(rng, n):
    gaze = rng.normal(size=(n, 3)) * [0.3, 0.3, 0.1] + [0, 0.2, -1]
    return {"gaze": gaze / np.linalg.norm(gaze, axis=1, keepdims=True),
            "image": rng.integers(0, 256, size=(n, 36, 60), dtype=np.uint8),
            "pose": rng.normal(size=(n, 3)) * 0.2}


def write_day(path, n, rng):
    data = {"left": eye(rng, n), "right": eye(rng, n)}
    filenames = np.empty((n, 1), dtype=object)
    for i in range(n):
        filenames[i, 0] = f"{i + 1:04d}.jpg"
    scipy.io.savemat(path, {"data": data, "filenames": filenames}, do_compression=True)
    return data


def hysts_pose(rotvec):  # pytorch_mpiigaze's convert_pose, with scipy's Rodrigues
    z = Rotation.from_rotvec(rotvec).as_matrix()[:, 2]
    return np.array([np.arcsin(z[1]), np.arctan2(z[0], z[2])])


def test_scipy_written_days_load_through_the_loader(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "MPIIGaze"
    days = {}
    for person in ("p00", "p01"):
        (root / "Data" / "Normalized" / person).mkdir(parents=True)
        days[person] = write_day(root / "Data" / "Normalized" / person / "day01.mat", 5, rng)
    lists = root / "Evaluation Subset" / "sample list for eye image"
    lists.mkdir(parents=True)
    for person in ("p00", "p01"):
        (lists / f"{person}.txt").write_text("day01/0003.jpg left\nday01/0005.jpg right\n")
    data = libgaze.open_dataset(f"mpiigaze:{root}", data__split="all")
    assert len(data) == 4
    left, right = data[0], data[1]
    assert left["key"] == "p00/day01/0003.jpg/left" and left["participant"] == 0
    np.testing.assert_array_equal(left["image"], days["p00"]["left"]["image"][2])
    np.testing.assert_allclose(left["gaze"], days["p00"]["left"]["gaze"][2], atol=1e-6)
    np.testing.assert_allclose(left["head"], hysts_pose(days["p00"]["left"]["pose"][2]), atol=1e-5)
    # Right eyes mirrored as the standard protocol does: image flipped, gaze x and head yaw negated.
    np.testing.assert_array_equal(right["image"], days["p00"]["right"]["image"][4][:, ::-1])
    want = days["p00"]["right"]["gaze"][4] * [-1, 1, 1]
    np.testing.assert_allclose(right["gaze"], want, atol=1e-6)
    np.testing.assert_allclose(right["head"], hysts_pose(days["p00"]["right"]["pose"][4]) * [1, -1], atol=1e-5)
    assert data[3]["participant"] == 1
    np.testing.assert_allclose(data.labels()["head"][1], right["head"])


def test_synth_days_read_as_public_code_reads_them(tmp_path):
    cfg = libgaze.config(synth__out_dir=str(tmp_path), synth__layouts=["mpiigaze"], synth__participants=3,
                         synth__mpii_images=7, synth__mpii_evaluation=4, run__threads=2)
    libgaze.synth(cfg)
    root = tmp_path / "mpiigaze"
    mat = scipy.io.loadmat(root / "Data" / "Normalized" / "p01" / "day01.mat")
    images = mat["data"]["left"][0, 0]["image"][0, 0]
    gaze = mat["data"]["right"][0, 0]["gaze"][0, 0]
    names = [f[0][0] for f in mat["filenames"]]
    assert images.dtype == np.uint8 and images.shape == (len(names), 36, 60)
    assert gaze.shape == (len(names), 3) and names[0] == "0001.jpg"
    np.testing.assert_allclose(np.linalg.norm(gaze, axis=1), 1, atol=1e-9)
    single = scipy.io.loadmat(root / "Data" / "Normalized" / "p01" / "day04.mat", squeeze_me=True)
    assert single["filenames"] == "0001.jpg"  # the one-image day, as hysts special-cases it
    lines = (root / "Evaluation Subset" / "sample list for eye image" / "p01.txt").read_text().split("\n")
    day, name = lines[0].split(" ")[0].split("/")
    assert Path(root / "Data" / "Normalized" / "p01" / f"{day}.mat").exists()
    data = libgaze.open_dataset(root, cfg, data__split="all")
    assert len(data) == 3 * 4
    first = [data[i] for i in range(len(data)) if data[i]["key"].startswith("p01/")][0]
    assert first["key"] == f"p01/{day}/{name}/{lines[0].split(' ')[1]}"
