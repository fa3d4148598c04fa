"""Models of the papers, selectable by name. Input normalisation lives inside every model.

Models take uint8 images in NCHW (as the engine keeps them on the device) and scale them themselves,
so a checkpoint is self-contained: the dataset statistics travel with the weights.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class Normalize(nn.Module):
    """uint8 [0, 255] → standardised float, with the training set's per-channel mean and std."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-3).view(1, -1, 1, 1) * 255.0)

    def forward(self, x):
        return (x.float() - self.mean) / self.std


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head: for 8x8 (digits) and 28x28 (MNIST-like) inputs."""

    def __init__(self, in_channels: int, n_classes: int, mean, std, width: int = 16):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            conv_bn(in_channels, width),
            conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, n_classes)

    def forward_normalized(self, x):
        return self.head(self.features(x))

    def forward(self, x):
        return self.forward_normalized(self.normalize(x))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool); `width` 64 is the standard model."""

    def __init__(self, in_channels: int, n_classes: int, mean, std, width: int = 64):
        super().__init__()
        self.normalize = Normalize(mean, std)
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        c_in = width
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(c_in, w, stride), BasicBlock(w, w, 1)]
            c_in = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward_normalized(self, x):
        return self.head(self.features(x))

    def forward(self, x):
        return self.forward_normalized(self.normalize(x))


VGG11_LAYOUT = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")  # channels as multiples of `width` (64: VGG11)


class VGG11(nn.Module):
    """VGG11 for small inputs (configuration "A"): eight 3x3 convs, five 2x2 max-pools, one Linear head.

    `width` is the first conv's channels (64 is the standard model: 64-128-256-256-512-512-512-512). As in
    the CIFAR versions of VGG (and JiT's VGG11, which has no batch norm), the classifier is one Linear
    layer on the pooled feature vector instead of ImageNet VGG's three 4096-wide layers. Pools use
    ceil_mode and the features end in adaptive average pooling, so any input side >= 1 works (32x32
    gives 1x1 after the fifth pool as in the original; 8x8 and 28x28 reach 1x1 earlier and stay there).
    `batch_norm=False` is VGG11 (convs with bias, Kaiming-normal init as torchvision's VGG, since without
    batch norm PyTorch's default init shrinks the signal through eight layers); True is VGG11-BN.
    """

    def __init__(self, in_channels: int, n_classes: int, mean, std, width: int = 64, batch_norm: bool = False):
        super().__init__()
        self.normalize = Normalize(mean, std)
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in VGG11_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            c_out = item * width
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_normalized(self, x):
        return self.head(self.features(x))

    def forward(self, x):
        return self.forward_normalized(self.normalize(x))


class VGG11BN(VGG11):
    """VGG11 with batch norm after every conv (convs without bias)."""

    def __init__(self, in_channels: int, n_classes: int, mean, std, width: int = 64):
        super().__init__(in_channels, n_classes, mean, std, width=width, batch_norm=True)


def sincos_2d(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding, (h*w, dim); dim is padded with zeros to a multiple of 4."""
    quarter = max(1, dim // 4)
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32, device=device) / max(1, quarter - 1)))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                            torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
    ys, xs = ys.reshape(-1, 1) * omega, xs.reshape(-1, 1) * omega
    pe = torch.cat([xs.sin(), xs.cos(), ys.sin(), ys.cos()], dim=1)
    return F.pad(pe, (0, max(0, dim - pe.shape[1])))[:, :dim]


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # flash / memory-efficient kernels on CUDA
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _ViTFeatures(nn.Module):
    """Patches → tokens (+ fixed 2-D sin-cos positions) → blocks → final LayerNorm → mean over tokens."""

    def __init__(self, in_channels: int, dim: int, depth: int, heads: int, patch: int, mlp_ratio: int):
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.blocks = nn.Sequential(*[_Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self._pos: dict[tuple, torch.Tensor] = {}

    def position(self, h: int, w: int, dim: int, device) -> torch.Tensor:
        if torch.compiler.is_compiling():  # traced as constant ops (inductor folds them); no dict mutation in the graph
            return sincos_2d(h, w, dim, device)
        key = (h, w, str(device))
        if key not in self._pos:  # a constant, not a buffer: nothing size-specific in the checkpoint
            with torch.inference_mode(False), torch.no_grad():  # usable later in training, even if made in eval
                self._pos[key] = sincos_2d(h, w, dim, device)
        return self._pos[key]

    def forward(self, x):
        x = self.embed(x)                                   # (b, dim, h/p, w/p)
        b, d, h, w = x.shape
        x = x.flatten(2).transpose(1, 2) + self.position(h, w, d, x.device).to(x.dtype)
        return self.norm(self.blocks(x)).mean(dim=1)


class ViTSmall(nn.Module):
    """A small Vision Transformer for 32x32 inputs ("simple ViT" of Beyer et al. 2022, scaled down).

    Patch 4 (32x32 → 64 tokens), embedding dim = `width` (192 is the intended size: ~2.7 M parameters),
    depth 6, heads = dim // 64 (3 at 192; at least 1, reduced until it divides dim), MLP ratio 4, pre-norm
    blocks. No class token: the penultimate vector (`features`) is the final LayerNorm of the tokens'
    mean, and `head` is one Linear layer on it. Positions are fixed 2-D sin-cos embeddings computed for
    the input's patch grid, so any input side >= 4 works (a side not divisible by 4 drops the remainder
    pixels at the border, as a strided patch conv does).
    """

    depth, patch, mlp_ratio = 6, 4, 4

    def __init__(self, in_channels: int, n_classes: int, mean, std, width: int = 192):
        super().__init__()
        dim = width
        heads = max(1, dim // 64)
        while dim % heads:
            heads -= 1
        self.normalize = Normalize(mean, std)
        self.features = _ViTFeatures(in_channels, dim, self.depth, heads, self.patch, self.mlp_ratio)
        self.head = nn.Linear(dim, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward_normalized(self, x):
        return self.head(self.features(x))

    def forward(self, x):
        return self.forward_normalized(self.normalize(x))


ARCHITECTURES = {"small_cnn": SmallCNN, "resnet18": ResNet18, "vgg11": VGG11, "vgg11_bn": VGG11BN,
                 "vit_small": ViTSmall}


def build_model(arch: str, *, in_channels: int, n_classes: int, mean, std, width: int) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch: unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](in_channels, n_classes, mean, std, width=width)
