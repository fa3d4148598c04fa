"""The model zoo: the Classifier contract, torchvision parameter counts, config errors, SmallCNN stability."""
from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from unlearnbench.nn.models import ARCHITECTURES, Classifier, build_model

torchvision = pytest.importorskip("torchvision")

# small widths keep the tests fast (resnet18 at 64 is checked against torchvision below)
SMALL_WIDTH = {"small_cnn": 8, "resnet18": 8, "vgg11": 8, "vgg11_bn": 8, "vit_small": 16}


def _build(arch, channels=3, size=32, n_classes=10, **kw):
    kw.setdefault("width", SMALL_WIDTH[arch])
    return build_model(arch, in_channels=channels, n_classes=n_classes, mean=[0.5] * channels,
                       std=[0.25] * channels, image_size=[size, size], **kw)


def _images(channels, size, n=2, seed=0):
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------ the contract

CASES = [(arch, head) for arch in ARCHITECTURES for head in ([None, "torchvision", "reference", "compact"]
                                                              if arch.startswith("vgg") else [None])]


@pytest.mark.parametrize("arch,head", CASES)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_arch_meets_the_classifier_contract(arch, head, channels):
    models = {}
    for size in (8, 28, 32):
        if arch == "resnet18" and models:  # input-size independent and the slowest to build: build once
            model = next(iter(models.values()))
        else:
            model = _build(arch, channels, size, head=head).eval()
        models[size] = model
        assert isinstance(model, Classifier) and isinstance(model.head, nn.Linear)
        assert isinstance(model.normalize.mean, torch.Tensor) and "normalize.mean" in model.state_dict()
        x = _images(channels, size)
        with torch.no_grad():
            logits = model(x)
            z = model.features(model.normalize(x))
            assert logits.shape == (2, 10) and logits.dtype == torch.float32
            assert z.shape == (2, model.head.in_features)
            assert torch.equal(logits, model.head(z))
            assert torch.equal(logits, model.forward_normalized(model.normalize(x)))
        assert list(model.state_dict())[-2:] == ["head.weight", "head.bias"]  # the head comes last


def test_forward_and_backward_in_train_mode():
    for arch in ARCHITECTURES:
        model = _build(arch, 3, 8).train()
        model(_images(3, 8, n=4)).logsumexp(1).sum().backward()
        assert all(p.grad is not None for p in model.parameters()), arch


# ------------------------------------------------------------------------------------------ torchvision

def test_resnet18_is_torchvisions_with_the_cifar_stem():
    model = _build("resnet18", 3, 32, width=64)
    with torch.device("meta"):
        tv = torchvision.models.resnet18(num_classes=10)
    # the 7x7 stem conv becomes 3x3 (same 64 outputs, no bias); max-pool and everything else unchanged
    expected = _n_params(tv) - tv.conv1.weight.numel() + 64 * 3 * 3 * 3
    assert _n_params(model) == expected == 11_173_962
    assert model.features.conv1.kernel_size == (3, 3) and model.features.conv1.stride == (1, 1)
    assert isinstance(model.features.maxpool, nn.Identity) and isinstance(model.features.fc, nn.Identity)
    assert model.head.in_features == 512
    gray = _build("resnet18", 1, 28, width=64)
    assert gray.features.conv1.in_channels == 1 and _n_params(gray) == expected - 64 * 2 * 3 * 3


def test_resnet18_at_another_width_is_the_width_k_network_of_torchvision_blocks():
    """width k: stages at k, 2k, 4k, 8k channels from torchvision's BasicBlock, torchvision's init; the parameter
    count is the width-64 count's formula at k, and width 64 is torchvision's network bit for bit (same seed)."""
    def count(k, c=3):  # stem 3x3 conv + BN, 8 BasicBlocks (two 3x3 convs + 2 BN each), 3 downsamples, fc
        n = c * k * 9 + 2 * k
        widths = [k, 2 * k, 4 * k, 8 * k]
        prev = k
        for i, w in enumerate(widths):
            n += prev * w * 9 + w * w * 9 + 4 * w + (w * w * 9 + w * w * 9 + 4 * w)
            if i:
                n += prev * w + 2 * w
            prev = w
        return n + 8 * k * 10 + 10
    assert count(64) == 11_173_962
    for k in (8, 16):
        model = _build("resnet18", 3, 32, width=k)
        assert _n_params(model) == count(k)
        assert [model.features.layer1[0].conv1.out_channels, model.features.layer4[1].conv2.out_channels] == [k, 8 * k]
        assert model.head.in_features == 8 * k
        w = model.features.layer2[0].conv1.weight  # Kaiming normal, fan_out: std sqrt(2 / (out * 9))
        assert abs(float(w.std()) - (2 / (w.shape[0] * 9)) ** 0.5) < 0.2 * (2 / (w.shape[0] * 9)) ** 0.5
    torch.manual_seed(0)
    a = _build("resnet18", 3, 32, width=64)
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=10)
    same = [k for k, v in tv.state_dict().items() if k != "conv1.weight" and not k.startswith("fc.")]
    assert all(torch.equal(a.features.state_dict()[k], tv.state_dict()[k]) for k in same)
    assert torch.equal(a.head.weight, tv.fc.weight)


def test_vgg11_parameter_counts_follow_torchvision():
    with torch.device("meta"):
        tv = torchvision.models.vgg11(num_classes=10)
        tv_1000 = torchvision.models.vgg11()
        ours = {head: _build("vgg11", 3, 32, width=64, head=head) for head in ("torchvision", "reference", "compact")}
    conv_params = _n_params(tv.features)
    assert _n_params(ours["torchvision"]) == _n_params(tv) == 128_807_306
    assert _n_params(ours["reference"]) == _n_params(tv_1000) + 1000 * 10 + 10 == 132_873_346
    assert _n_params(ours["compact"]) == conv_params + 512 * 10 + 10 == 9_225_610
    with torch.device("meta"):
        bn = _build("vgg11_bn", 3, 32, width=64)
        tv_bn = torchvision.models.vgg11_bn(num_classes=10)
    assert _n_params(bn) == _n_params(tv_bn) == 128_812_810


def test_vgg11_default_head_is_jits_reference_model_bit_for_bit():
    """vgg11 default = what JiT's src/models.py builds: torchvision vgg11() then Linear(1000, C), no ReLU."""
    torch.manual_seed(7)
    jit_body, jit_fc = torchvision.models.vgg11(), nn.Linear(1000, 100)
    torch.manual_seed(7)
    model = build_model("vgg11", in_channels=3, n_classes=100, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2],
                        width=64, image_size=[32, 32])
    theirs = {**{f"features.{k}": v for k, v in jit_body.state_dict().items()},
              **{f"head.{k}": v for k, v in jit_fc.state_dict().items()}}
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("normalize.")}
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert model.head.in_features == 1000
    assert sum(isinstance(m, nn.Dropout) for m in model.features.modules()) == 2  # dropout lives in features
    x = _images(3, 32)
    model.eval(), jit_body.eval()
    with torch.no_grad():  # ceil-mode pools change nothing at 32x32
        assert torch.equal(model(x), jit_fc(jit_body(model.normalize(x))))
    model.train(), jit_body.train()  # JiT never calls eval(): dropout active, same masks under the same seed
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = jit_fc(jit_body(model.normalize(x)))
    assert torch.equal(a, b)


def test_vgg_widths_and_heads():
    assert _build("vgg11_bn", 3, 32).head.in_features == 64 * 8  # vgg11_bn default: torchvision's head, h = 64·w
    scaled = _build("vgg11", 3, 32, width=8, head="torchvision")
    assert [m.out_features for m in scaled.features.classifier if isinstance(m, nn.Linear)] == [512, 512]
    assert scaled.features.classifier[0].in_features == 64 * 49
    convs = [m.out_channels for m in scaled.features.features if isinstance(m, nn.Conv2d)]
    assert convs == [8, 16, 32, 32, 64, 64, 64, 64]
    assert not any(t.is_meta for t in scaled.state_dict().values())


def test_vit_small_is_torchvisions_vision_transformer():
    model = _build("vit_small", 3, 32, width=192)
    with torch.device("meta"):
        tv = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=6, num_heads=3,
                                                  hidden_dim=192, mlp_dim=768, num_classes=10)
    assert _n_params(model) == _n_params(tv) == 2_693_578
    assert model.features.encoder.layers[0].self_attention.num_heads == 3
    gray = _build("vit_small", 1, 28, width=192)
    assert gray.features.conv_proj.in_channels == 1
    assert gray.features.encoder.pos_embedding.shape == (1, 7 * 7 + 1, 192)


# ------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("kwargs,key", [
    ({"arch": "resnet50"}, r"model\.arch"),
    ({"arch": "resnet18", "width": 0}, r"model\.width"),
    ({"arch": "small_cnn", "width": 0}, r"model\.width"),
    ({"arch": "vgg11", "head": "big"}, r"model\.head"),
    ({"arch": "resnet18", "head": "compact"}, r"model\.head"),
    ({"arch": "vit_small", "size": 30}, r"vit_small.*divisible"),
])
def test_bad_model_config_names_the_key(kwargs, key):
    kwargs = {"width": 16, "size": 32, **kwargs}
    with pytest.raises(ValueError, match=key):
        build_model(kwargs["arch"], in_channels=3, n_classes=10, mean=[0.5] * 3, std=[0.25] * 3,
                    width=kwargs["width"], image_size=[kwargs["size"]] * 2, head=kwargs.get("head"))


def test_vit_small_needs_the_image_size():
    with pytest.raises(ValueError, match="image_size"):
        build_model("vit_small", in_channels=3, n_classes=10, mean=[0.5] * 3, std=[0.25] * 3, width=16)


def test_training_builds_models_with_image_size_and_head():
    from unlearnbench.steps.training import new_model

    data = types.SimpleNamespace(manifest={"channels": 1, "n_classes": 10, "mean": [0.3], "std": [0.2],
                                           "image_size": [28, 28]})
    vit = new_model(data, {"arch": "vit_small", "width": 16})
    assert vit.features.image_size == 28
    vgg = new_model(data, {"arch": "vgg11", "width": 8, "head": "compact"})
    assert vgg.head.in_features == 64
    old = new_model(data, {"arch": "small_cnn", "width": 16})  # a checkpoint's model_cfg without `head`
    assert old.head.in_features == 64


# ------------------------------------------------------------------------------------------ SmallCNN stability

class _FrozenNormalize(nn.Module):
    """models.Normalize as of commit 6e22d05 (frozen reference)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-3).view(1, -1, 1, 1) * 255.0)

    def forward(self, x):
        return (x.float() - self.mean) / self.std


def _frozen_conv_bn(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _FrozenSmallCNN(nn.Module):
    """models.SmallCNN as of commit 6e22d05, before the Classifier base class (frozen reference)."""

    def __init__(self, in_channels, n_classes, mean, std, width=16):
        super().__init__()
        self.normalize = _FrozenNormalize(mean, std)
        self.features = nn.Sequential(
            _frozen_conv_bn(in_channels, width),
            _frozen_conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            _frozen_conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, n_classes)

    def forward_normalized(self, x):
        return self.head(self.features(x))

    def forward(self, x):
        return self.forward_normalized(self.normalize(x))


@pytest.mark.parametrize("channels,size,width,seed", [(1, 8, 16, 0), (3, 28, 16, 1), (1, 28, 4, 2)])
def test_small_cnn_is_bit_identical_to_the_old_class(channels, size, width, seed):
    mean, std = [0.4] * channels, [0.3] * channels
    torch.manual_seed(seed)
    old = _FrozenSmallCNN(channels, 10, mean, std, width=width)
    rng_after_old = torch.get_rng_state()
    torch.manual_seed(seed)
    new = build_model("small_cnn", in_channels=channels, n_classes=10, mean=mean, std=std, width=width,
                      image_size=[size, size])
    assert torch.equal(torch.get_rng_state(), rng_after_old)  # same draws: whatever follows is unchanged too
    old_sd, new_sd = old.state_dict(), new.state_dict()
    assert list(old_sd) == list(new_sd)
    for key in old_sd:
        assert torch.equal(old_sd[key], new_sd[key]), key
    x = _images(channels, size, n=8, seed=seed)
    for train in (True, False):  # train mode too: batch statistics, running-stat updates
        old.train(train), new.train(train)
        assert torch.equal(old(x), new(x))
    for key, value in old.state_dict().items():
        assert torch.equal(value, new.state_dict()[key]), key
