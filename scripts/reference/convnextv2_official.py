"""An independent PyTorch statement of the official ConvNeXt V2 model definition
(facebookresearch/ConvNeXt-V2, models/convnextv2.py), used as the numeric reference that
libgaze's C++ model and checkpoint import are tested against.

    python3 convnextv2_official.py OUT_DIR [--seed N]

writes OUT_DIR/official.pt  torch.save({"model": state_dict, "epoch": 0}) exactly as the
                            official training script saves it (pickled OrderedDict), and
       OUT_DIR/probe.pt     {"input": x, "features": forward_features(x), "logits": forward(x)}
with every weight (including GRN gamma/beta, zero in a fresh official model) randomised so
each operation is exercised.
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.Module):
    """LayerNorm over the last axis (channels_last) or the channel axis of NCHW (channels_first)."""

    def __init__(self, dim, eps=1e-6, data_format="channels_last"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps
        self.data_format = data_format
        self.dim = (dim,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.dim, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(x)))))
        return shortcut + x.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, in_chans=3, num_classes=1000, depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
            LayerNorm(dims[0], eps=1e-6, data_format="channels_first")))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm(dims[i], eps=1e-6, data_format="channels_first"),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward_features(self, x):
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
        return self.norm(x.mean([-2, -1]))

    def forward(self, x):
        return self.head(self.forward_features(x))


def convnextv2_atto(**kwargs):
    return ConvNeXtV2(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320), **kwargs)


def write_fixture(out_dir, seed=0, height=64, width=96):
    torch.manual_seed(seed)
    model = convnextv2_atto().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Keep norms near 1 and everything else small, like a trained network.
            if name.endswith("norm.weight") or name.endswith(".1.weight") and p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.05 * torch.randn_like(p))
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"model": model.state_dict(), "epoch": 0}, os.path.join(out_dir, "official.pt"))
    x = torch.randn(2, 3, height, width)
    with torch.no_grad():
        probe = {"input": x, "features": model.forward_features(x), "logits": model(x)}
    torch.save(probe, os.path.join(out_dir, "probe.pt"))
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_fixture(args.out_dir, args.seed)
