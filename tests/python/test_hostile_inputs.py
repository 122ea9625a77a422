"""Damaged and hostile files, laid out the way real tools write them, end in one clear line and
exit 1: never a signal, never gigabytes allocated from a few header bytes, never silent garbage."""
import struct
import zlib

import h5py
import numpy as np
import pytest
import torch


def fails_with(result, text):
    """Exit 1 and one error line naming the problem (a progress line may precede it)."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("gaze: error:")]
    assert len(errors) == 1 and text in errors[0] and result.stderr.rstrip().endswith(errors[0]), result.stderr


@pytest.fixture(scope="module")
def aea(tmp_path_factory, gaze_exe):
    import subprocess
    root = tmp_path_factory.mktemp("aea")
    subprocess.run([gaze_exe, "synth", f"synth.out_dir={root}", "synth.layouts=[aea,images]", "synth.participants=3",
                    "synth.aea_frames=4", "synth.aea_size=[48,128]", "synth.images=2", "synth.image_size=[32,32]"],
                   check=True, capture_output=True)
    subprocess.run([gaze_exe, "pack", f"aea:{root}/aea", "-o", str(root / "aea.h5")], check=True, capture_output=True)
    return root


def damaged_pack(aea, tmp_path, edit):
    out = tmp_path / "damaged.h5"
    out.write_bytes((aea / "aea.h5").read_bytes())
    with h5py.File(out, "r+") as f:
        edit(f)
    return out


def replace(f, name, data):
    del f[name]
    f.create_dataset(name, data=data)


def test_pack_columns_that_disagree_with_the_images_are_refused(aea, tmp_path, run_gaze):
    n = 3 * 4 * 2
    short = damaged_pack(aea, tmp_path, lambda f: replace(f, "gaze", f["gaze"][: n - 4]))
    fails_with(run_gaze("data", "dump", short, check=False), "/gaze has shape [20,3], expected [24,3]")
    long = damaged_pack(aea, tmp_path, lambda f: replace(f, "gaze", np.tile(f["gaze"][()], (40, 1))))
    fails_with(run_gaze("data", "dump", long, check=False), "/gaze has shape [960,3]")  # used to be SIGSEGV
    keys = damaged_pack(aea, tmp_path, lambda f: replace(f, "keys", f["keys"][:3]))
    fails_with(run_gaze("data", "dump", keys, check=False), "/keys does not hold one key per image")

    def nan_row(f):
        g = f["gaze"][()]
        g[5] = np.nan
        replace(f, "gaze", g)
    fails_with(run_gaze("data", "dump", damaged_pack(aea, tmp_path, nan_row), check=False),
               "/gaze row 5 is not a unit vector")


def test_mps_csv_repeats_and_impossible_angles_are_refused_a_bom_is_not(aea, tmp_path, run_gaze):
    rec = next((aea / "aea").iterdir())
    csv = rec / "mps" / "eye_gaze" / "general_eye_gaze.csv"
    original = csv.read_bytes()
    try:
        lines = original.decode().splitlines(keepends=True)
        csv.write_text(lines[0] + lines[1] + lines[1] + "".join(lines[2:]))
        fails_with(run_gaze("data", "info", f"aea:{aea}/aea", check=False), "general_eye_gaze.csv:3: tracking_timestamp_us")
        header = lines[0].strip().split(",")
        row = lines[1].strip().split(",")
        row[header.index("yaw_rads_cpf")] = "1e308"
        csv.write_text(lines[0] + ",".join(row) + "\n" + "".join(lines[2:]))
        fails_with(run_gaze("data", "info", f"aea:{aea}/aea", check=False),
                   "general_eye_gaze.csv:2: column yaw_rads_cpf: 1e308 rad is not a gaze angle")
        csv.write_bytes(b"\xef\xbb\xbf" + original)  # Excel's UTF-8 byte-order mark
        assert run_gaze("data", "info", f"aea:{aea}/aea").returncode == 0
    finally:
        csv.write_bytes(original)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_image_headers_claiming_gigapixels_are_refused_before_decoding(aea, tmp_path, run_gaze):
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    # A valid PNG header for 65535 x 65535 grey (4.3 GB decoded) with a tiny IDAT.
    png = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 65535, 65535, 8, 0, 0, 0, 0)) +
           png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + png_chunk(b"IEND", b""))
    (folder / "big.png").write_bytes(png)
    out = tmp_path / "p.h5"
    fails_with(run_gaze("pack", f"folder:{tmp_path}/imgs", "-o", out, check=False), "PNG header declares 65535x65535")
    (folder / "big.png").unlink()
    # A real JPEG (rendered by gaze synth) whose SOF claims 65500 x 65500.
    jpeg = bytearray(next((aea / "images").rglob("*.jpg")).read_bytes())
    sof = jpeg.find(b"\xff\xc0")
    assert sof > 0
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
    (folder / "big.jpg").write_bytes(bytes(jpeg))
    fails_with(run_gaze("pack", f"folder:{tmp_path}/imgs", "-o", out, check=False), "JPEG header declares 65500x65500")
    assert not out.exists()
    # The limits are the config's: a 32x32 image is too big for data.max_image_pixels=1000.
    (folder / "big.jpg").write_bytes(next((aea / "images").rglob("*.jpg")).read_bytes())
    fails_with(run_gaze("pack", f"folder:{tmp_path}/imgs", "-o", out, "data.max_image_pixels=1000", check=False),
               "JPEG header declares 32x32 pixels (limit 1000, data.max_image_pixels)")


def test_a_checkpoint_view_repeating_one_element_is_refused(tmp_path, run_gaze):
    # 300 M elements viewing a 1-element storage (stride 0): a few hundred bytes on disk.
    torch.save({"model": {"downsample_layers.0.0.bias": torch.zeros(1).expand(300_000_000)}}, tmp_path / "x.pt")
    assert (tmp_path / "x.pt").stat().st_size < 2000
    fails_with(run_gaze("import-checkpoint", tmp_path / "x.pt", "-o", tmp_path / "x.h5", check=False),
               "a 300000000-element view of a 1-element storage")
    assert not (tmp_path / "x.h5").exists()


def test_a_word_swap_fletcher32_cannot_see_is_caught_by_the_image_crc(aea, tmp_path, run_gaze):
    # Image 3 rewritten with two bytes changed through h5py, which recomputes fletcher32 (as a
    # 0x0000 <-> 0xFFFF swap that fletcher32 misses would look): only the CRC-32C can tell.
    def swap(f):
        image = f["images"][3]
        flat = image.reshape(-1).copy()
        flat[0:2] = 255 if flat[0] == 0 else 0
        f["images"][3] = flat.reshape(image.shape)
    damaged = damaged_pack(aea, tmp_path, swap)
    with h5py.File(damaged, "r") as f:
        assert f.attrs["version"] == 4 and f["images_crc32c"].shape == (24,) and f["head"].shape == (24, 2)
    fails_with(run_gaze("pack", damaged, "-o", tmp_path / "copy.h5", "data.split=all", check=False),
               "): CRC-32C mismatch: the pixels are damaged")


def test_a_full_disk_ends_in_one_line_and_keeps_the_last_checkpoint(aea, tmp_path, gaze_exe):
    """A write that fails part-way (here: RLIMIT_FSIZE, which fails writes like a full disk
    without needing root to mount one) names the file and the OS reason, exits 1 and leaves the
    previous checkpoint byte for byte. It used to end in SIGSEGV in HDF5's exit-time teardown."""
    import hashlib
    import resource
    import signal
    import subprocess
    args = [gaze_exe, "train", "teacher-mae", f"data.source=aea:{aea}/aea", "data.input_size=[32,64]",
            "train.batch_size=4", "train.warmup_steps=0", f"run.out_dir={tmp_path}", "run.name=full",
            "run.threads=1", "data.workers=1", "train.checkpoint_every=2"]
    subprocess.run(args + ["train.steps=4", "--stop-at", "2"], check=True, capture_output=True)
    last = tmp_path / "full" / "checkpoints" / "last.h5"
    before = hashlib.sha256(last.read_bytes()).hexdigest()
    assert last.stat().st_size > 1 << 20

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    result = subprocess.run(args + ["train.steps=4", "--resume"], capture_output=True, text=True,
                            preexec_fn=small_files)
    fails_with(result, "last.h5: /")
    assert "(File too large)" in result.stderr
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.h5"]


def test_label_damage_fletcher32_cannot_see_and_undeclared_rows_are_refused(aea, tmp_path, run_gaze):
    def swap(f):  # in place: HDF5 recomputes fletcher32 over the new bytes, the CRC attribute stays
        f["participant"][5] = -281474976710656  # what a 0x0000 <-> 0xFFFF word swap made of an id
    fails_with(run_gaze("data", "dump", damaged_pack(aea, tmp_path, swap), check=False),
               "/participant: CRC-32C mismatch: the labels are damaged")

    def grow(f):  # a billion rows declared, none written: refused before any column is allocated
        f["images"].resize(10**9, axis=0)
    fails_with(run_gaze("data", "dump", damaged_pack(aea, tmp_path, grow), check=False),
               "/images declares 1000000000 images the file does not store")
