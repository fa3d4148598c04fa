"""Training throughput: the naive recipe most repositories use vs. unlearnbench's engine, in one process.

Both sides train on the same synthetic CIFAR-shaped data (random uint8 HxWx3 images, random labels in 10
classes; throughput does not depend on the pixel values), with one warm-up epoch excluded from timing and
then --epochs timed epochs, bracketed by torch.cuda.synchronize():

  naive  torchvision ResNet-18 with the CIFAR stem (conv1 = 3x3 stride 1, maxpool = Identity), fp32,
         torch.utils.data.DataLoader with --num-workers worker processes and CPU transforms per image
         (PIL image → RandomCrop(size, padding=4), RandomHorizontalFlip, ToTensor, Normalize), batch 128,
         shuffle, pin_memory on CUDA, torch.optim.SGD (momentum 0.9, Nesterov off, weight decay 5e-4).
  ours   build_model("resnet18"): torchvision resnet18 with the same stem (--arch/--width selectable), trained by
         engine.train itself: the dataset resident on the device as uint8, crop+flip on the device, bf16 autocast and
         channels_last on CUDA, foreach SGD, one-cycle schedule, batch 512, drop-last (fixed shapes).

Images/s counts the images each side actually trained on (the naive loader keeps the last partial batch,
the engine drops it). Run on a GPU machine:

  python benchmarks/train_speed.py                      # 50,000 images, 1 warm-up + 3 timed epochs
  python benchmarks/train_speed.py --batch-size 1024 --compile

CPU smoke test (slow, only checks that both paths run):

  python benchmarks/train_speed.py --device cpu --n-images 2048 --epochs 1 --num-workers 0
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np
import torch

from unlearnbench.nn import engine
from unlearnbench.nn.models import ARCHITECTURES, build_model

N_CLASSES = 10
# CIFAR-10's channel statistics, so both sides normalise identically to a real CIFAR run
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def synthetic_data(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, size=n, dtype=np.int64)
    return images, labels


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _import_torchvision():
    try:
        import torchvision
        from torchvision import transforms
    except ImportError as exc:  # optional for the project: only this baseline needs it
        raise SystemExit("benchmarks/train_speed.py: the naive baseline needs torchvision, which is not installed "
                         "(pip install torchvision matching your torch), or pass --skip-naive to time only the "
                         f"engine ({exc})") from exc
    return torchvision, transforms


class _ArrayDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does: a uint8 HWC array, PIL image per item, then the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def time_naive(images, labels, args, device: torch.device) -> dict:
    torchvision, transforms = _import_torchvision()
    size = images.shape[1]
    transform = transforms.Compose([
        transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    loader = torch.utils.data.DataLoader(
        _ArrayDataset(images, labels, transform), batch_size=args.naive_batch_size, shuffle=True,
        num_workers=args.num_workers, pin_memory=device.type == "cuda",
        persistent_workers=args.num_workers > 0 and args.persistent_workers,
    )
    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(num_classes=N_CLASSES)
    model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = torch.nn.Identity()
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()

    def epoch() -> int:
        model.train()
        seen = 0
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            seen += len(yb)
        return seen

    for _ in range(args.warmup_epochs):
        epoch()
    _sync(device)
    t0 = time.perf_counter()
    seen = sum(epoch() for _ in range(args.epochs))
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"images": seen, "seconds": seconds, "images_per_s": seen / seconds}


def time_ours(images, labels, args, device: torch.device) -> dict:
    generator = engine.seed_everything(args.seed)
    model = build_model(args.arch, in_channels=3, n_classes=N_CLASSES, mean=MEAN, std=STD, width=args.width,
                        image_size=images.shape[1:3])
    model = model.to(device)
    x, y = engine.to_device(images, labels, device)
    cfg = engine.TrainConfig(epochs=args.warmup_epochs + args.epochs, batch_size=args.batch_size, lr=0.2,
                             momentum=0.9, weight_decay=5e-4, label_smoothing=0.0, schedule="onecycle",
                             augment=True, flip=True, compile=args.compile)
    ends: list[float] = []

    def on_epoch_end(epoch: int, _model) -> None:  # train() has already read the epoch's loss (a host sync)
        _sync(device)
        ends.append(time.perf_counter())

    _sync(device)
    start = time.perf_counter()
    engine.train(model, x, y, cfg, generator=generator, log=lambda line: None, on_epoch_end=on_epoch_end)
    per_epoch = len(x) - len(x) % cfg.batch_size if len(x) > cfg.batch_size else len(x)
    timed_from = ends[args.warmup_epochs - 1] if args.warmup_epochs else start
    seconds = ends[-1] - timed_from
    seen = per_epoch * args.epochs
    return {"images": seen, "seconds": seconds, "images_per_s": seen / seconds}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cuda, cuda:N or cpu")
    parser.add_argument("--n-images", type=int, default=50_000)
    parser.add_argument("--image-size", type=int, default=32, help="side of the square images (>= 8)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after the warm-up)")
    parser.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs first (cuDNN autotune, "
                        "compilation, worker start)")
    parser.add_argument("--num-workers", type=int, default=8, help="naive: DataLoader worker processes")
    parser.add_argument("--no-persistent-workers", dest="persistent_workers", action="store_false",
                        help="naive: restart the workers every epoch (the DataLoader default; costs the naive side "
                             "a worker start per epoch). Default keeps them, which favours the naive side")
    parser.add_argument("--naive-batch-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=512, help="ours: batch size")
    parser.add_argument("--arch", default="resnet18", choices=sorted(ARCHITECTURES), help="ours: model")
    parser.add_argument("--width", type=int, default=64, help="ours: model width (64: standard ResNet-18)")
    parser.add_argument("--compile", action="store_true", help="ours: engine's train.compile (CUDA only)")
    parser.add_argument("--skip-naive", action="store_true", help="time only our engine (no torchvision transforms/DataLoader "
                        "side; the models but small_cnn are torchvision's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.warmup_epochs < 0 or args.n_images < 1 or args.image_size < 8:
        parser.error("need --epochs >= 1, --warmup-epochs >= 0, --n-images >= 1, --image-size >= 8")
    return args


def main(argv=None, out=print) -> dict:
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    engine.configure_threads(args.threads)
    device = engine.resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # both sides: fixed input shapes
    images, labels = synthetic_data(args.n_images, args.image_size, args.seed)
    results = {}
    if not args.skip_naive:
        results["naive"] = time_naive(images, labels, args, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    results["ours"] = time_ours(images, labels, args, device)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    out(f"command: python benchmarks/train_speed.py {shlex.join(argv)}".rstrip())
    out(f"device:  {name}; torch {torch.__version__}" + (f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""))
    out(f"data:    {args.n_images} synthetic uint8 {args.image_size}x{args.image_size}x3 images, {N_CLASSES} classes; "
        f"{args.warmup_epochs} warm-up + {args.epochs} timed epochs")
    rows = []
    if "naive" in results:
        rows.append(("naive", f"torchvision resnet18 fp32, DataLoader x{args.num_workers} workers, "
                              f"batch {args.naive_batch_size}", results["naive"]))
    ours_desc = (f"{args.arch} w{args.width}, engine.train, batch {args.batch_size}"
                 + (", bf16 + channels_last" if device.type == "cuda" else ", fp32")
                 + (", compile" if args.compile and device.type == "cuda" else ""))
    rows.append(("ours", ours_desc, results["ours"]))
    out(f"{'recipe':<7} {'images':>9} {'seconds':>9} {'images/s':>10}  setup")
    for label, desc, r in rows:
        out(f"{label:<7} {r['images']:>9d} {r['seconds']:>9.2f} {r['images_per_s']:>10.1f}  {desc}")
    if "naive" in results:
        results["ratio"] = results["ours"]["images_per_s"] / results["naive"]["images_per_s"]
        out(f"ratio ours / naive: {results['ratio']:.2f}x")
    results["device"] = name
    return results


if __name__ == "__main__":
    main()
