"""An independent PyTorch statement of the official ConvNeXt V2 model definition
(facebookresearch/ConvNeXt-V2, models/convnextv2.py), used as the numeric reference that
libgaze's C++ model and checkpoint import are tested against.

    python3 convnextv2_official.py OUT_DIR [--seed N] [--layout ema|fcmae|fcmae-sparse]

writes OUT_DIR/official.pt  the weights of one random ConvNeXt V2-Atto in one of the official
                            checkpoint layouts:
         ema           the fine-tuned release (`*_ema.pt`): {"model": state_dict, "epoch"},
                       dense models/convnextv2.py names, a 1000-class head
         fcmae         the released FCMAE weights (`*_fcmae.pt`): the dense encoder only (no
                       final norm, no head), GRN stored [1, 4d] like the sparse encoder's
         fcmae-sparse  what main_pretrain.py saves: the FCMAE module (fcmae.py) around the
                       MinkowskiEngine encoder (convnextv2_sparse.py), i.e. "encoder." names,
                       `kernel` tensors in Minkowski's layout, `.ln.` / `.linear.` wrappers,
                       [1, C] biases, the decoder, plus optimizer / epoch / scaler / args
       OUT_DIR/probe.pt     {"input": x, "pooled": stage-4 output pooled, "features":
                            forward_features(x), "logits": forward(x)}
with every weight (including GRN gamma/beta, zero in a fresh official model) randomised so
each operation is exercised. The sparse modules below are parameter-for-parameter stand-ins
for MinkowskiEngine's (names and shapes from its source; they hold weights, they do not run):
the test is that libgaze maps that layout back to the dense model the probe was computed with.
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


# --- the sparse FCMAE layout (ConvNeXt-V2 models/fcmae.py + models/convnextv2_sparse.py) -----
# MinkowskiEngine stores a K x K kernel as [K*K, (in,) out] with kernel offsets ordered first
# spatial axis fastest (src/kernel_region.hpp); the sparse tensor's axes are (H, W), so the
# dense tap (kh, kw) is row kh + K*kw.

class MinkowskiLayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.ln = nn.LayerNorm(dim, eps=eps)


class MinkowskiLinear(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.linear = nn.Linear(i, o)


class MinkowskiDepthwiseConvolution(nn.Module):
    def __init__(self, dim, k):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(k * k, dim))
        self.bias = nn.Parameter(torch.zeros(1, dim))


class MinkowskiConvolution(nn.Module):
    def __init__(self, i, o, k):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(k * k, i, o))
        self.bias = nn.Parameter(torch.zeros(1, o))


class MinkowskiGRN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, dim))
        self.beta = nn.Parameter(torch.zeros(1, dim))


class SparseBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = MinkowskiDepthwiseConvolution(dim, 7)
        self.norm = MinkowskiLayerNorm(dim)
        self.pwconv1 = MinkowskiLinear(dim, 4 * dim)
        self.grn = MinkowskiGRN(4 * dim)
        self.pwconv2 = MinkowskiLinear(4 * dim, dim)


class SparseConvNeXtV2(nn.Module):
    def __init__(self, depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(3, dims[0], kernel_size=4, stride=4),
            LayerNorm(dims[0], eps=1e-6, data_format="channels_first")))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                MinkowskiLayerNorm(dims[i]), MinkowskiConvolution(dims[i], dims[i + 1], 2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*[SparseBlock(dims[i]) for _ in range(depths[i])]) for i in range(4))


class FCMAE(nn.Module):
    def __init__(self, decoder_dim=512, patch=32):
        super().__init__()
        self.encoder = SparseConvNeXtV2()
        self.proj = nn.Conv2d(320, decoder_dim, kernel_size=1)
        self.mask_token = nn.Parameter(torch.zeros(1, decoder_dim, 1, 1))
        self.decoder = nn.Sequential(Block(decoder_dim))
        self.pred = nn.Conv2d(decoder_dim, patch * patch * 3, kernel_size=1)


def sparse_fcmae_from(dense):
    """An FCMAE module whose encoder holds `dense`'s weights in the sparse layout."""
    fcmae = FCMAE()
    sd = {k: v.clone() for k, v in fcmae.state_dict().items()}
    for name, v in dense.state_dict().items():
        if name.startswith("norm.") or name.startswith("head."):
            continue  # the sparse encoder has neither
        parts = name.split(".")
        if name.startswith("downsample_layers.0."):
            key = name
        elif name.startswith("downsample_layers."):  # i.0 = LayerNorm, i.1 = 2x2 conv
            if parts[2] == "0":
                key = ".".join(parts[:3] + ["ln", parts[3]])
            elif parts[3] == "weight":  # [out, in, kh, kw] -> [kh + 2*kw, in, out]
                key, v = ".".join(parts[:3] + ["kernel"]), v.permute(3, 2, 1, 0).reshape(4, v.shape[1], v.shape[0])
            else:
                key, v = name, v.reshape(1, -1)
        else:  # stages.s.b.<layer>.<param>
            layer, param = parts[3], parts[4]
            head = ".".join(parts[:4])
            if layer == "dwconv" and param == "weight":  # [C, 1, kh, kw] -> [kh + 7*kw, C]
                key, v = head + ".kernel", v[:, 0].permute(2, 1, 0).reshape(49, v.shape[0])
            elif layer == "dwconv":
                key, v = name, v.reshape(1, -1)
            elif layer == "norm":
                key = head + ".ln." + param
            elif layer in ("pwconv1", "pwconv2"):
                key = head + ".linear." + param
            else:  # grn
                key, v = name, v.reshape(1, -1)
        key = "encoder." + key
        assert key in sd and sd[key].shape == v.shape, (key, v.shape)
        sd[key] = v
    fcmae.load_state_dict(sd)
    return fcmae


def write_fixture(out_dir, seed=0, height=64, width=96, layout="ema"):
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
    path = os.path.join(out_dir, "official.pt")
    if layout == "ema":
        torch.save({"model": model.state_dict(), "epoch": 0}, path)
    elif layout == "fcmae":
        sd = {k: (v.reshape(1, -1) if ".grn." in k else v)
              for k, v in model.state_dict().items() if not k.startswith(("norm.", "head."))}
        torch.save({"model": sd}, path)
    elif layout == "fcmae-sparse":
        fcmae = sparse_fcmae_from(model)
        optimizer = torch.optim.AdamW(fcmae.parameters(), lr=1.5e-4)
        args = argparse.Namespace(model="convnextv2_atto", input_size=224, mask_ratio=0.6, norm_pix_loss=True)
        torch.save({"model": fcmae.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 799,
                    "scaler": {"scale": 65536.0, "growth_factor": 2.0}, "args": args}, path)
    else:
        raise ValueError(f"unknown layout {layout}")
    x = torch.randn(2, 3, height, width)
    with torch.no_grad():
        pooled = x
        for i in range(4):
            pooled = model.stages[i](model.downsample_layers[i](pooled))
        probe = {"input": x, "pooled": pooled.mean([-2, -1]), "features": model.forward_features(x),
                 "logits": model(x)}
    torch.save(probe, os.path.join(out_dir, "probe.pt"))
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", default="ema", choices=["ema", "fcmae", "fcmae-sparse"])
    args = parser.parse_args()
    write_fixture(args.out_dir, args.seed, layout=args.layout)
