"""libgaze's training steps restated in Python PyTorch, as a researcher would write them with the
same library (Debian python3-torch 1.13, the version of our LibTorch): the peer that
scripts/bench-train times our C++ steps against.

    python3 train_steps.py STAGE --batch 32 --input 96x128 --steps 10 --warmup 2 --threads 2

STAGE is teacher-mae, distill, adapters (the student's) or teacher-adapters. Prints one JSON
object like `gaze bench-train`.

Everything mirrors libgaze's defaults (SPEC §2, configs/stages): the ConvNeXt V2 block with a
bottleneck adapter (Linear -> BatchNorm1d -> LeakyReLU -> Linear, residual) in every block; the
head LayerNorm + Linear(4); FCMAE as dense masking (mask ratio 0.6 on a 32-px grid, hidden
positions zeroed after each downsampling and each block's depthwise conv and MLP), a decoder of
1x1 proj -> mask token -> one block -> 1x1 pred, norm-pix MSE on hidden patches; distillation =
that pixel loss + 0.5 * masked feature MSE at stages 3 and 4 through Psi (block + Linear), the
frozen teacher unmasked under no_grad, stem and stage 1 frozen; adapters = frozen backbone, all
adapters + head trained, L1 on unit gaze + the detached Laplace scale NLL. AdamW (weight decay
0.05, the adapters' stage file leaves it at the default 0.05 too), gradient clipping at 1.0.
Op-for-op it is what libgaze computed before any fusion, written the idiomatic PyTorch way
(F.layer_norm on a permuted tensor, the official GRN). The script checks the trainable
parameter count so a mismatch with the C++ model cannot go unnoticed (bench-train compares).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convnextv2_official import GRN  # noqa: E402  (the official GRN)

STUDENT = dict(depths=(2, 2, 6, 2), dims=(40, 20, 40, 80))
TEACHER = dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320))
STRIDE = 32  # stage-4 stride: one 32x32 patch predicted per position


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW tensor."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class Adapter(nn.Module):
    def __init__(self, dim, reduction=4, slope=0.01):
        super().__init__()
        self.down = nn.Linear(dim, dim // reduction)
        self.bn = nn.BatchNorm1d(dim // reduction)
        self.up = nn.Linear(dim // reduction, dim)
        self.slope = slope
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        shape = x.shape
        h = F.leaky_relu(self.bn(self.down(x.reshape(-1, shape[-1]))), self.slope)
        return x + self.up(h).reshape(shape)


class Block(nn.Module):
    def __init__(self, dim, adapter=True):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.adapter = Adapter(dim) if adapter else None

    def forward(self, inp, keep=None):
        x = self.dwconv(inp)
        if keep is not None:
            x = x * keep
        x = x.permute(0, 2, 3, 1)
        x = F.gelu(self.pwconv1(self.norm(x)))
        if keep is not None:
            x = x * keep.permute(0, 2, 3, 1)
        x = self.pwconv2(self.grn(x))
        if self.adapter is not None:
            x = self.adapter(x)
        x = inp + x.permute(0, 3, 1, 2)
        return x * keep if keep is not None else x


class GazeNet(nn.Module):
    def __init__(self, depths, dims):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0]))] +
            [nn.Sequential(LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)) for i in (1, 2, 3)])
        self.stages = nn.ModuleList(nn.ModuleList(Block(dims[i]) for _ in range(depths[i])) for i in range(4))
        self.norm = nn.LayerNorm(dims[3], eps=1e-6)
        self.head = nn.Linear(dims[3], 4)

    def forward_stages(self, x, mask=None):
        out = []
        for i in range(4):
            x = self.downsample_layers[i](x)
            keep = None
            if mask is not None:
                keep = 1.0 - upsample_mask(mask, x.shape[2])
                x = x * keep
            for block in self.stages[i]:
                x = block(x, keep)
            out.append(x)
        return out

    def forward(self, x):
        return self.head(self.norm(self.forward_stages(x)[-1].mean((2, 3))))


class FcmaeDecoder(nn.Module):
    def __init__(self, in_dim, dim=128, outputs=STRIDE * STRIDE):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, dim, 1)
        self.block = Block(dim, adapter=False)
        self.pred = nn.Conv2d(dim, outputs, 1)
        self.mask_token = nn.Parameter(torch.randn(1, dim, 1, 1) * 0.02)

    def forward(self, features, mask):
        x = self.proj(features)
        x = x * (1 - mask) + self.mask_token * mask
        return self.pred(self.block(x))


class KdProjector(nn.Module):
    def __init__(self, student_dim, teacher_dim):
        super().__init__()
        self.block = Block(student_dim, adapter=False)
        self.fc = nn.Linear(student_dim, teacher_dim)

    def forward(self, x):
        return self.fc(self.block(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def upsample_mask(mask, height):
    """Nearest-neighbour [N, 1, h, w] patch mask at a feature map `height` rows high (a multiple of h)."""
    r = height // mask.shape[2]
    return mask.repeat_interleave(r, 2).repeat_interleave(r, 3)


def random_patch_mask(batch, grid_h, grid_w, ratio=0.6):
    hidden = round(ratio * grid_h * grid_w)
    order = torch.rand(batch, grid_h * grid_w).argsort(1)
    mask = torch.zeros(batch, grid_h * grid_w)
    mask.scatter_(1, order[:, :hidden], 1.0)
    return mask.reshape(batch, 1, grid_h, grid_w)


def masked_patch_mse(pred, image, mask):
    n, c, H, W = image.shape
    h, w, p = H // STRIDE, W // STRIDE, STRIDE
    target = image.reshape(n, c, h, p, w, p).permute(0, 1, 3, 5, 2, 4).reshape(n, c * p * p, h, w)
    target = (target - target.mean(1, keepdim=True)) / (target.var(1, keepdim=True) + 1e-6).sqrt()
    per_patch = (pred - target).pow(2).mean(1)
    m = mask.squeeze(1)
    return (per_patch * m).sum() / m.sum().clamp_min(1.0)


def masked_feature_mse(target, pred, mask):
    per_position = (pred - target).pow(2).mean(1)
    m = upsample_mask(mask, target.shape[2]).squeeze(1)
    return (per_position * m).sum() / m.sum().clamp_min(1.0)


def gaze_loss(out, target):
    d = out[:, :3] / out[:, :3].norm(dim=1, keepdim=True).clamp_min(1e-12)
    l1 = (d - target).abs().mean()
    r = (d - target).abs().sum(1).detach()
    s = out[:, 3].clamp(-7.0, 7.0)
    return l1 + (r * torch.exp(-s) + s).mean()


def set_trainable(module, flag):
    for p in module.parameters():
        p.requires_grad_(flag)


def build(stage, batch, height, width):
    """Returns (trainable modules' parameters, loss function of one step)."""
    images = torch.randn(batch, 3, height, width)
    images[:, 1] = images[:, 0]  # one grey image replicated, as the loader makes it
    images[:, 2] = images[:, 0]
    gaze = F.normalize(torch.randn(batch, 3), dim=1)
    grid = (height // STRIDE, width // STRIDE)
    pixel_target = images[:, :1]
    if stage == "teacher-mae":
        net, decoder = GazeNet(**TEACHER), FcmaeDecoder(TEACHER["dims"][3])
        set_trainable(net, True)
        set_trainable(net.norm, False)  # not part of the FCMAE encoder, nor is the head
        set_trainable(net.head, False)
        for name, p in net.named_parameters():
            if ".adapter." in name:
                p.requires_grad_(False)
        net.train()

        def loss():
            mask = random_patch_mask(batch, *grid)
            features = net.forward_stages(images, mask)[-1]
            return masked_patch_mse(decoder(features, mask), pixel_target, mask)
        return [p for p in net.parameters() if p.requires_grad] + list(decoder.parameters()), loss
    if stage == "distill":
        teacher, student = GazeNet(**TEACHER), GazeNet(**STUDENT)
        teacher.eval()
        set_trainable(teacher, False)
        set_trainable(student, False)
        for name, p in student.named_parameters():
            frozen = name.startswith(("downsample_layers.0.", "stages.0.", "norm.", "head.")) or ".adapter." in name
            p.requires_grad_(not frozen)
        decoder = FcmaeDecoder(STUDENT["dims"][3])
        psi3 = KdProjector(STUDENT["dims"][2], TEACHER["dims"][2])
        psi4 = KdProjector(STUDENT["dims"][3], TEACHER["dims"][3])
        student.train()

        def loss():
            mask = random_patch_mask(batch, *grid)
            with torch.no_grad():
                t = teacher.forward_stages(images)
            s = student.forward_stages(images, mask)
            pixel = masked_patch_mse(decoder(s[3], mask), pixel_target, mask)
            kd3 = masked_feature_mse(t[2], psi3(s[2]), mask)
            kd4 = masked_feature_mse(t[3], psi4(s[3]), mask)
            return pixel + 0.5 * (kd3 + kd4)
        params = [p for p in student.parameters() if p.requires_grad]
        for m in (decoder, psi3, psi4):
            params += list(m.parameters())
        return params, loss
    if stage in ("adapters", "teacher-adapters"):
        net = GazeNet(**(STUDENT if stage == "adapters" else TEACHER))
        set_trainable(net, False)
        for name, p in net.named_parameters():
            p.requires_grad_(".adapter." in name or name.startswith("head."))
        net.train()
        return [p for p in net.parameters() if p.requires_grad], lambda: gaze_loss(net(images), gaze)
    raise SystemExit(f"unknown stage {stage}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input", default="96x128")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--trace", help="also write a Chrome trace of the timed steps (torch.autograd.profiler) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    height, width = (int(v) for v in args.input.split("x"))
    params, loss_fn = build(args.stage, args.batch, height, width)
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    times = []
    profile = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup and args.trace:
            profile = torch.autograd.profiler.profile()
            profile.__enter__()
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn()
        loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step >= args.warmup:
            times.append((time.perf_counter() - start) * 1000)
    if profile is not None:
        profile.__exit__(None, None, None)
        profile.export_chrome_trace(args.trace)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "impl": "pytorch", "stage": args.stage, "batch": args.batch, "input": [height, width],
        "threads": torch.get_num_threads(), "trainable_params": sum(p.numel() for p in params),
        "median_ms": round(median, 2), "min_ms": round(times[0], 2),
        "images_per_s": round(1000.0 * args.batch / median, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
