"""Models of the papers, selectable by name (`model.arch`). Input normalisation lives inside every model.

Every architecture is a `Classifier`: uint8 NCHW images in, logits out, with the training set's channel
statistics stored in the model, so a checkpoint is self-contained. `small_cnn` is ours; `resnet18`,
`vgg11`, `vgg11_bn` and `vit_small` are torchvision's models (torchvision is imported only when one of
them is built, so importing this module stays cheap), adapted to small inputs as each builder states.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Normalize(nn.Module):
    """uint8 [0, 255] → standardised float, with the training set's per-channel mean and std."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-3).view(1, -1, 1, 1) * 255.0)

    def forward(self, x):
        return (x.float() - self.mean) / self.std


class Classifier(nn.Module):
    """The contract every architecture meets (JiT and the UIB setting rely on it).

    * input: uint8 images, NCHW, values 0..255;
    * `normalize`: a `Normalize` module, uint8 → standardised float (the training set's per-channel mean
      and std are buffers, so they travel with the weights);
    * `features`: normalised input → penultimate feature vector, shape (N, D); everything of the network
      except the final Linear layer, dropout included;
    * `head`: the final `nn.Linear(D, n_classes)`;
    * `forward_normalized(x) = head(features(x))` (x already normalised: JiT perturbs in that space);
    * `forward(x) = forward_normalized(normalize(x))`.

    Submodules are registered in the order normalize, features, head, so `modules()` and `state_dict()`
    end with the head.
    """

    def __init__(self, normalize: Normalize, features: nn.Module, head: nn.Linear):
        super().__init__()
        if not isinstance(head, nn.Linear):
            raise TypeError(f"Classifier.head must be an nn.Linear, not {type(head).__name__}")
        self.normalize = normalize
        self.features = features
        self.head = head

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_normalized(self.normalize(x))


# ----------------------------------------------------------------------------------------------- small_cnn

def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(Classifier):
    """Three conv blocks and a linear head: for 8x8 (digits) and 28x28 (MNIST-like) inputs (ours; any side).

    Parameter names, their order and the order of module creation are fixed: for a given torch seed the
    initial weights are those of every earlier version (tests/test_models.py checks it bit for bit).
    """

    def __init__(self, in_channels: int, n_classes: int, mean, std, width: int = 16):
        normalize = Normalize(mean, std)
        features = nn.Sequential(
            conv_bn(in_channels, width),
            conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        head = nn.Linear(4 * width, n_classes)
        super().__init__(normalize, features, head)


def small_cnn(in_channels: int, n_classes: int, mean, std, *, width: int, image_size=None, head=None) -> Classifier:
    _no_head_choice("small_cnn", head)
    return SmallCNN(in_channels, n_classes, mean, std, width=width)


# ------------------------------------------------------------------------------------- torchvision models

def _torchvision_models():
    try:
        import torchvision.models
    except ImportError as exc:
        raise ImportError("model.arch: resnet18, vgg11, vgg11_bn and vit_small are torchvision's models; install "
                          "torchvision matching your torch (pip install torchvision)") from exc
    return torchvision.models


def _no_head_choice(arch: str, head) -> None:
    if head is not None:
        raise ValueError(f"model.head: only vgg11 and vgg11_bn have a choice of classifier head; remove model.head "
                         f"for arch {arch} (got {head!r})")


def _kaiming_conv_(conv: nn.Conv2d) -> nn.Conv2d:
    """torchvision's ResNet/VGG conv init (Kaiming normal, fan_out, ReLU; zero bias), for convs we replace."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def resnet18(in_channels: int, n_classes: int, mean, std, *, width: int, image_size=None, head=None) -> Classifier:
    """torchvision's `resnet18(num_classes=n_classes)` with the CIFAR stem, at stage widths `width`·(1, 2, 4, 8).

    `conv1` becomes a 3x3 conv, stride 1, padding 1, no bias, with `in_channels` inputs (Kaiming-normal
    init as torchvision's other convs), and `maxpool` becomes Identity; everything else is torchvision's.
    `features` is the torchvision network with `fc = Identity` (its forward ends with the flattened
    average-pooled 8·width-vector), `head` is its `fc`. Width 64 is torchvision's network itself (64-128-256-512;
    bit for bit under a fixed seed). Another width is the width-k ResNet-18 of Nakkiran et al. (Deep Double
    Descent, 2019): the same network with its four stages at k, 2k, 4k, 8k channels, built from torchvision's own
    `BasicBlock`s by its `_make_layer` and initialised as torchvision initialises them (`width_per_group` cannot do
    this: it scales Bottleneck blocks only).
    """
    _no_head_choice("resnet18", head)
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"model.width: resnet18's stage widths are width·(1, 2, 4, 8); width must be a positive "
                         f"integer (64 is torchvision's network; got {width!r})")
    tv = _torchvision_models()
    normalize = Normalize(mean, std)
    net = tv.resnet18(num_classes=n_classes)
    if width != 64:
        block = tv.resnet.BasicBlock
        net.inplanes = width
        net.bn1 = nn.BatchNorm2d(width)
        net.layer1 = net._make_layer(block, width, 2)
        net.layer2 = net._make_layer(block, 2 * width, 2, stride=2)
        net.layer3 = net._make_layer(block, 4 * width, 2, stride=2)
        net.layer4 = net._make_layer(block, 8 * width, 2, stride=2)
        net.fc = nn.Linear(8 * width, n_classes)
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                _kaiming_conv_(m)
    net.conv1 = _kaiming_conv_(nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False))
    net.maxpool = nn.Identity()
    fc, net.fc = net.fc, nn.Identity()
    return Classifier(normalize, net, fc)


VGG_HEADS = ("torchvision", "reference", "compact")
VGG_DEFAULT_HEAD = {"vgg11": "reference", "vgg11_bn": "torchvision"}


def _vgg(arch: str, in_channels: int, n_classes: int, mean, std, width: int, head, batch_norm: bool) -> Classifier:
    """torchvision's VGG11 (configuration "A", `make_layers`) with a choice of classifier head.

    Convs have `width`·(1, 2, 4, 8) channels (64: torchvision's 64-128-256-512). The five max-pools use
    ceil_mode, which changes nothing for a 32x32 input (every map side is even) and lets 28x28 and 8x8
    inputs through (without it the fifth pool would see a 1x1 map and fail). `head`:

    * "torchvision": torchvision's classifier: AdaptiveAvgPool(7, 7) → Linear(8w·49, h) → ReLU → Dropout
      → Linear(h, h) → ReLU → Dropout → Linear(h, n_classes), h = 64·width (4096 at width 64);
    * "reference": what the JiT reference code trains: torchvision's classifier with its 1000 outputs,
      then `Linear(1000, n_classes)` directly (no activation between), as `VGG16` in JiT's src/models.py;
    * "compact": AdaptiveAvgPool(1) → one Linear(8w, n_classes) (this project's earlier CIFAR-style VGG).

    `features` is the torchvision VGG minus the last Linear (for "reference" it ends with the 1000-way
    output), so the two Dropout layers live in `features`. At width 64 the "torchvision" and "reference"
    networks are built by torchvision's `VGG(...)` constructor itself (its init: Kaiming-normal convs,
    N(0, 0.01) linears, BN 1/0; for "reference" the extra Linear has PyTorch's default init, as in JiT),
    so under a fixed seed the reference model is bit for bit the one JiT's code builds. Other widths and
    "compact" build the classifier here and apply the same init (the compact head: PyTorch's default).
    """
    head = VGG_DEFAULT_HEAD[arch] if head is None else head
    if head not in VGG_HEADS:
        raise ValueError(f"model.head: {head!r} is not a VGG head; choose one of {list(VGG_HEADS)}")
    VGG, cfgs, make_layers = (getattr(_torchvision_models().vgg, n) for n in ("VGG", "cfgs", "make_layers"))
    normalize = Normalize(mean, std)
    layers = make_layers([v if v == "M" else v * width // 64 for v in cfgs["A"]], batch_norm=batch_norm)
    for m in layers:
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True
    if in_channels != 3:  # make_layers always starts with 3 input channels
        first = layers[0]
        layers[0] = nn.Conv2d(in_channels, first.out_channels, 3, padding=1, bias=first.bias is not None)
    n_out = n_classes if head == "torchvision" else 1000
    if width == 64 and head != "compact":
        net = VGG(layers, num_classes=n_out)  # torchvision's classifier and init, unchanged
    else:
        with torch.device("meta"):  # nothing allocated for the classifier replaced below
            net = VGG(layers, num_classes=n_out, init_weights=False)
        if head == "compact":
            net.avgpool, net.classifier = nn.AdaptiveAvgPool2d(1), nn.Identity()
        else:
            hidden = 64 * width
            net.classifier = nn.Sequential(
                nn.Linear(8 * width * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(0.5),
                nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(hidden, n_out))
        for m in net.modules():  # torchvision's VGG init
            if isinstance(m, nn.Conv2d):
                _kaiming_conv_(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
    if head == "torchvision":
        last, net.classifier[-1] = net.classifier[-1], nn.Identity()
    else:
        last = nn.Linear(1000 if head == "reference" else 8 * width, n_classes)
    return Classifier(normalize, net, last)


def vgg11(in_channels: int, n_classes: int, mean, std, *, width: int, image_size=None, head=None) -> Classifier:
    """torchvision's vgg11 (no batch norm); default head "reference" (the JiT tables' model), see `_vgg`."""
    return _vgg("vgg11", in_channels, n_classes, mean, std, width, head, batch_norm=False)


def vgg11_bn(in_channels: int, n_classes: int, mean, std, *, width: int, image_size=None, head=None) -> Classifier:
    """torchvision's vgg11_bn (batch norm after every conv); default head "torchvision", see `_vgg`."""
    return _vgg("vgg11_bn", in_channels, n_classes, mean, std, width, head, batch_norm=True)


VIT_PATCH, VIT_DEPTH = 4, 6


def vit_small(in_channels: int, n_classes: int, mean, std, *, width: int, image_size=None, head=None) -> Classifier:
    """torchvision's `VisionTransformer` scaled to small images.

    Patch 4, 6 encoder layers, hidden dim = `width` (192 intended: about 2.7 M parameters), MLP dim
    4·width, heads = width // 64 (3 at 192; at least 1, reduced until it divides the width), class token,
    learned position embedding for the given `image_size` (square, side divisible by 4: torchvision's ViT
    accepts only that size). For `in_channels` other than 3 the patch projection `conv_proj` is replaced
    (torchvision's init for it). `features` is the network with `heads = Identity`: the class token after
    the encoder's final LayerNorm; `head` is torchvision's `heads.head` (zero-initialised by torchvision).
    """
    _no_head_choice("vit_small", head)
    if image_size is None:
        raise ValueError("vit_small needs the input image size: build_model(..., image_size=(H, W)) (the pipeline "
                         "passes the experiment manifest's image_size)")
    h, w = (image_size, image_size) if isinstance(image_size, int) else (int(s) for s in image_size)
    if h != w or h % VIT_PATCH:
        raise ValueError(f"model.arch: vit_small takes square images whose side is divisible by its patch size "
                         f"{VIT_PATCH}; this data is {h}x{w}")
    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    tv = _torchvision_models()
    normalize = Normalize(mean, std)
    net = tv.VisionTransformer(image_size=h, patch_size=VIT_PATCH, num_layers=VIT_DEPTH, num_heads=heads,
                               hidden_dim=width, mlp_dim=4 * width, num_classes=n_classes)
    if in_channels != 3:
        net.conv_proj = nn.Conv2d(in_channels, width, VIT_PATCH, stride=VIT_PATCH)
        nn.init.trunc_normal_(net.conv_proj.weight, std=math.sqrt(1 / (in_channels * VIT_PATCH * VIT_PATCH)))
        nn.init.zeros_(net.conv_proj.bias)
    last, net.heads = net.heads.head, nn.Identity()
    return Classifier(normalize, net, last)


ARCHITECTURES = {"small_cnn": small_cnn, "resnet18": resnet18, "vgg11": vgg11, "vgg11_bn": vgg11_bn,
                 "vit_small": vit_small}


def build_model(arch: str, *, in_channels: int, n_classes: int, mean, std, width: int, image_size=None,
                head: str | None = None) -> Classifier:
    """The model `arch` as a `Classifier`. `image_size` (H, W) or a side: needed by vit_small; `head`: the
    VGG classifier choice (`model.head`; None: the architecture's default)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch: unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if width < 1:
        raise ValueError(f"model.width: must be a positive integer, got {width}")
    return ARCHITECTURES[arch](in_channels, n_classes, mean, std, width=width, image_size=image_size, head=head)
