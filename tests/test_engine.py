"""The training engine and the models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench.nn import engine
from unlearnbench.nn.models import ARCHITECTURES, build_model


@pytest.fixture(scope="module")
def digits(digits_source):
    from unlearnbench.datasets.experiment import build_experiment
    from unlearnbench.datasets import load_prepared

    arrays, manifest = build_experiment(load_prepared(digits_source), split={"val_fraction": 0.1, "test_fraction": 0.25},
                                        colour={"enabled": False}, data_seed=0)
    return arrays, manifest


def _model(manifest, arch="small_cnn", width=16):
    return build_model(arch, in_channels=1, n_classes=10, mean=manifest["mean"], std=manifest["std"], width=width)


def test_engine_reaches_stated_accuracy_on_digits(digits):
    arrays, manifest = digits
    generator = engine.seed_everything(0)
    model = _model(manifest)
    x, y = engine.to_device(arrays["x_train"], arrays["y_train"], torch.device("cpu"))
    engine.train(model, x, y, engine.TrainConfig(epochs=15, batch_size=128, lr=0.05), generator=generator,
                 log=lambda s: None)
    x_test = engine.to_device(arrays["x_test"], None, torch.device("cpu"))
    accuracy = (engine.predict_logits(model, x_test).argmax(1).numpy() == arrays["y_test"]).mean()
    assert accuracy >= 0.95


def test_resume_after_kill_gives_the_same_weights(digits, tmp_path):
    arrays, manifest = digits
    cfg = engine.TrainConfig(epochs=4, batch_size=128, lr=0.05, augment=True)
    x, y = engine.to_device(arrays["x_train"], arrays["y_train"], torch.device("cpu"))

    generator = engine.seed_everything(1)
    uninterrupted = _model(manifest)
    engine.train(uninterrupted, x, y, cfg, generator=generator, log=lambda s: None)

    class Killed(Exception):
        pass

    def kill_after_two(epoch, model):
        if epoch == 2:
            raise Killed

    checkpoint = tmp_path / "model.pt.epoch"
    generator = engine.seed_everything(1)
    first = _model(manifest)
    with pytest.raises(Killed):
        engine.train(first, x, y, cfg, generator=generator, log=lambda s: None, checkpoint=checkpoint,
                     on_epoch_end=kill_after_two)
    # the kill happened before epoch 2's checkpoint: the job restarts in a fresh process state
    generator = engine.seed_everything(12345)
    resumed = _model(manifest)
    lines = []
    history = engine.train(resumed, x, y, cfg, generator=generator, log=lines.append, checkpoint=checkpoint)
    assert any("resumed" in line and "epoch 1" in line for line in lines)
    assert len(history) == cfg.epochs
    for (name, a), b in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_sgd_matches_torch_optim():
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    ours = engine.SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    reference = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    x = torch.randn(8, 4)
    for _ in range(5):
        for model, opt in ((a, ours), (b, reference)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_onecycle_schedule_shape():
    cfg = engine.TrainConfig(lr=0.1)
    lrs = [engine.learning_rate(cfg, s, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert int(np.argmax(lrs)) == 25 and lrs[-1] < 0.1 / 1000


@pytest.mark.parametrize("arch,size,channels", [("small_cnn", 8, 3), ("small_cnn", 28, 1), ("resnet18", 32, 3),
                                                 ("vgg11", 32, 3), ("vgg11", 8, 1), ("vgg11_bn", 32, 3),
                                                 ("vgg11_bn", 28, 1), ("vit_small", 32, 3), ("vit_small", 28, 1)])
def test_every_model_runs_forward_and_backward(arch, size, channels):
    model = build_model(arch, in_channels=channels, n_classes=10, mean=[0.5] * channels, std=[0.25] * channels,
                        width=8, image_size=[size, size])
    x = torch.randint(0, 256, (4, channels, size, size), dtype=torch.uint8)
    logits = model(x)
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_all_architectures_are_tested():
    assert set(ARCHITECTURES) == {"small_cnn", "resnet18", "vgg11", "vgg11_bn", "vit_small"}


def test_random_crop_flip_keeps_shape_and_content():
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = engine.random_crop_flip(x, generator, pad=2, flip=True)
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: bf16 autocast and channels_last "
                    "paths run only on GPU")
def test_cuda_bf16_channels_last_path(digits):
    arrays, manifest = digits
    device = torch.device("cuda")
    model = _model(manifest).to(device)
    x, y = engine.to_device(arrays["x_train"], arrays["y_train"], device)
    assert x.is_contiguous(memory_format=torch.channels_last) or x.shape[1] == 1
    engine.train(model, x, y, engine.TrainConfig(epochs=3, batch_size=128), generator=engine.seed_everything(0),
                 log=lambda s: None)
    assert engine.predict_logits(model, x).dtype == torch.float32
