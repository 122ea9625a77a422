"""libgaze — DFT Gaze from Python notebooks.

    import libgaze
    cfg = libgaze.config("configs/pipeline/demo.yaml", run__seed=3)   # `__` spells a dot
    data = libgaze.open_dataset("runs/demo/pipeline/packs/aea.h5", cfg, data__split="test")
    model = libgaze.load_model("runs/demo/pipeline/student_adapters_aea/model.h5", cfg)
    gaze, log_scale = model.predict(data[0]["image"])
    libgaze.angular_error(gaze, data[0]["gaze"][None])

Everything is numpy; torch tensors are accepted (and torch tensors returned) where Debian's
python3-torch is installed. Errors raise libgaze.Error with the C++ message.
"""

import numpy as _np

from ._libgaze import Config, Dataset, Error, Model  # noqa: F401
from . import _libgaze

__all__ = ["Config", "Dataset", "Error", "Model", "config", "open_dataset", "build_model", "load_model",
           "train", "evaluate", "personalize", "synth", "angular_error", "export_kernel", "kernel_personalize",
           "bench"]

try:  # optional torch interop
    import torch as _torch
except ImportError:  # pragma: no cover - torch is optional
    _torch = None


def _overrides(kwargs):
    """run__seed=3 -> ["run.seed=3"]; lists and booleans in YAML spelling."""
    out = []
    for key, value in kwargs.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"
        out.append(f"{key.replace('__', '.')}={value}")
    return out


def config(path=None, **overrides):
    """A resolved Config: the YAML file (or the defaults) plus keyword overrides."""
    o = _overrides(overrides)
    return Config.load(str(path), o) if path is not None else Config.default(o)


def _with(cfg, overrides):
    cfg = cfg if cfg is not None else Config.default([])
    return cfg.override(_overrides(overrides)) if overrides else cfg


def open_dataset(source, cfg=None, **overrides):
    """A Dataset from `source` (openeds:/aea:/folder:/pack: or a detected path)."""
    return _libgaze.open_dataset(_with(cfg, dict(overrides, data__source=str(source))))


def build_model(cfg=None, **overrides):
    return Model.build(_with(cfg, overrides))


def load_model(path, cfg=None, **overrides):
    return Model.load(str(path), _with(cfg, overrides))


def train(stage, cfg=None, resume=False, **overrides):
    """Run a training stage; returns {"run_dir", "model", "seconds", "metrics"}."""
    return _libgaze.train(stage, _with(cfg, overrides), resume)


def evaluate(checkpoint, source, cfg=None, **overrides):
    """Angular-error summary of a checkpoint on a dataset, as a dict."""
    return _libgaze.evaluate(str(checkpoint), _with(cfg, dict(overrides, data__source=str(source))))


def personalize(checkpoint, source, out_dir, cfg=None, **overrides):
    """Per-user last-stage adapters; returns errors before/after and the error-vs-k curve."""
    return _libgaze.personalize(str(checkpoint), _with(cfg, dict(overrides, data__source=str(source))), str(out_dir))


def export_kernel(checkpoint, out_dir, source, users=(), merge_user=None, cfg=None, **overrides):
    """Quantise a student and write the fixed-point C++ kernel folder (gaze export).

    `source` is the calibration data; returns sizes, MACs and the float vs fixed-point angle on
    held-out frames of it ("float_vs_fixed_mean_deg")."""
    c = _with(cfg, dict(overrides, data__source=str(source)))
    return _libgaze.export_kernel(str(checkpoint), c, str(out_dir), str(merge_user or ""),
                                  [str(u) for u in users])


def kernel_personalize(kernel_dir, eyes, gazes, blob_path, steps=None, seed=None, train_head=None):
    """Calibrate a wearer inside an exported kernel, as the device would (dftgaze_personalize):
    uint8 eye images N x H x W and their unit gazes N x 3 (numpy or torch) train the last-stage
    adapters (and, with train_head, the head's Linear) in the kernel's own code; the user blob
    (for dftgaze_set_user, or the kernel tool's --user) is written to blob_path. Returns the
    tool's report (personalize_ms, work_bytes, ...). steps / seed / train_head: None for the
    kernel's defaults (gaze personalize's)."""
    (e, _), (g, _) = _as_numpy(eyes), _as_numpy(gazes)
    return _libgaze.kernel_personalize(str(kernel_dir), e[None] if e.ndim == 2 else e,
                                       _np.asarray(g, dtype=_np.float32).reshape(-1, 3), str(blob_path),
                                       -1 if steps is None else int(steps), -1 if seed is None else int(seed),
                                       -1 if train_head is None else int(bool(train_head)))


def bench(checkpoint, source, kernel_dir=None, frames=1000, threads=1, model=None, cfg=None, **overrides):
    """Latency of the kernel (built with CMake) beside LibTorch fp32 on the same frames (gaze bench);
    model="pi4" adds the Raspberry Pi 4 cycle model (the dict's "pi4_model")."""
    c = _with(cfg, dict(overrides, data__source=str(source)))
    return _libgaze.bench(str(checkpoint), c, str(kernel_dir or ""), int(frames), int(threads), str(model or ""))


def synth(cfg=None, **overrides):
    """Render the synthetic OpenEDS2020/AEA datasets; returns (openeds_root, aea_root, seconds)."""
    return _libgaze.synth(_with(cfg, overrides))


def _as_numpy(x):
    if _torch is not None and isinstance(x, _torch.Tensor):
        return x.detach().cpu().numpy(), True
    return _np.asarray(x), False


def angular_error(a, b):
    """Degrees between rows of two N x 3 arrays (numpy or torch)."""
    (a, was_torch), (b, _) = _as_numpy(a), _as_numpy(b)
    out = _libgaze.angular_error(_np.atleast_2d(a), _np.atleast_2d(b))
    return _torch.from_numpy(out) if was_torch else out


def _predict(self, images):
    """uint8 eye images (H x W or N x H x W; numpy or torch) -> (unit gaze N x 3, log-scale N)."""
    arr, was_torch = _as_numpy(images)
    gaze, scale = _libgaze.Model.predict_numpy(self, arr)
    if was_torch:
        return _torch.from_numpy(gaze), _torch.from_numpy(scale)
    return gaze, scale


def _input(self, images):
    """uint8 eye images (H x W or N x H x W; numpy or torch) -> float N x 3 x H x W, what predict
    feeds the network: resampled to the config's input size and normalised. forward's input."""
    arr, was_torch = _as_numpy(images)
    x = _libgaze.Model.input_numpy(self, arr)
    return _torch.from_numpy(x) if was_torch else x


def _forward(self, x, stages=False):
    """float N x C x H x W (normalised: Model.input) -> head output N x 4 [, stage feature maps]; numpy or torch."""
    arr, was_torch = _as_numpy(x)
    out = _libgaze.Model.forward_numpy(self, arr.astype(_np.float32, copy=False), stages)
    if not was_torch:
        return out
    if stages:
        return _torch.from_numpy(out[0]), [_torch.from_numpy(f) for f in out[1]]
    return _torch.from_numpy(out)


Model.predict = _predict
Model.input = _input
Model.forward = _forward
