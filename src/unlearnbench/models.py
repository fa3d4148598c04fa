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


ARCHITECTURES = {"small_cnn": SmallCNN, "resnet18": ResNet18}


def build_model(arch: str, *, in_channels: int, n_classes: int, mean, std, width: int) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch: unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](in_channels, n_classes, mean, std, width=width)
