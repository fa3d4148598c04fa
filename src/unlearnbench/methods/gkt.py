"""GKT: gated knowledge transfer, the second zero-shot method of "Zero-Shot Machine Unlearning" (Chundawat, Tarun,
Mandal & Kankanhalli, IEEE TIFS 2023b), as JiT's benchmark runs it. Full class only; reads no data but the forget
set's class and image shape.

Reference: jwf40/Information-Theoretic-Unlearning @ c967614, src/forget_full_class_strategies.py `gkt` with src/gkt.py
(`Generator`, `LearnableLoader`, `attention`, `attention_diff`, `divergence`, `KT_loss_generator`, `KT_loss_student`),
adapted there from the official ayushkumartarun/zero-shot-unlearning @ e888197 (unlearn.py). A generator G (z ∈ R^128
→ an image in the model's normalised input space) and a student S play against the trained teacher T:

    band-pass:   keep the generated x with softmax(T(x))[c_f] ≤ 0.01 (c_f the forget class); none left: skip
    generator:   2 steps per z batch on  −KL(T(x) ‖ S(x))                    (SGD 0.01, momentum 0.9, clip 5)
    student:    15 steps per z batch on   KL(T(x) ‖ S(x)) + β Σ_l mean((a(S_l(x)) − a(T_l(x)))²)
                a(A) = L2-normalise(mean over channels of A², flattened)     (SGD, OneCycle max lr 0.1, clip 5)

for 1000 z batches of 128 (z ~ N(0, I), redrawn every 17 calls), β = 5 (the official code: 250), KL with τ = 1 and
F.kl_div's reduction 'mean' (÷ B·C; `kl_reduction: batchmean` for ÷ B). The layers l are every Conv2d of the network
(the reference's VGG returns every Conv2d output of `features` and the Linear outputs of its classifier, whose
attention map is constant, so they add 0; for a network with transformer encoder blocks, their outputs, as the
reference's ViT), recorded with forward hooks (base.LayerOutputs). The student starts as the teacher with every
Conv2d weight re-drawn (Xavier uniform; biases, batch norm and Linear layers keep the teacher's values, as in the
reference); the teacher and the student are in train mode (as the reference leaves them; dropout active) and the
generator is trained alongside. The student's OneCycle schedule is torch's OneCycleLR(max_lr 0.1, total =
pseudo_batches × student_steps), which also cycles the momentum between 0.95 and 0.85.

The reference stops early when 1000 consecutive batches have no sample left after the band-pass (it then tries to
reload a generator checkpoint that is never written, and gives up after 50 more): here the same count ends the run.
The generator's last conv is 3×3 for any number of channels (the reference's 1-channel branch uses a 7×7 conv with
padding 1, which shrinks the image). z comes from ctx.generator (the reference: torch.randn).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.lazy import lazy_import
from ._common import kl_div, the_forget_class
from .base import LayerOutputs, UnlearningMethod, engine, frozen_copy, knob, optimizer_step, register, torch

F = lazy_import("torch.nn.functional")
nn = lazy_import("torch.nn")


def make_generator(z_dim: int, side: int, channels: int):
    """The reference's `Generator` (same layers in the same order, so its state dict keys match): Linear → ReLU →
    [64, s/4, s/4] → BN → ConvT(×2) → BN → LeakyReLU → ConvT(×2) → BN → LeakyReLU → Conv3×3 → BN (affine)."""
    inter = z_dim // 2
    init = side // 4

    class View(nn.Module):
        def forward(self, x):
            return x.view(-1, inter, init, init)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            # the last conv and batch norm are built first, as in the reference (the order of the random init)
            last = nn.Conv2d(inter // 2, channels, 3, stride=1, padding=1)
            last_bn = nn.BatchNorm2d(channels, affine=True)
            self.layers = nn.Sequential(
                nn.Linear(z_dim, inter * init * init), nn.ReLU(inplace=True), View(), nn.BatchNorm2d(inter),
                nn.ConvTranspose2d(inter, inter, kernel_size=4, stride=2, padding=1), nn.BatchNorm2d(inter),
                nn.LeakyReLU(0.2, inplace=True),
                nn.ConvTranspose2d(inter, inter // 2, kernel_size=4, stride=2, padding=1), nn.BatchNorm2d(inter // 2),
                nn.LeakyReLU(0.2, inplace=True), last, last_bn)

        def forward(self, z):
            return self.layers(z)

    return Generator()


def attention(a):
    """a(A): per sample, the channel mean of A², flattened and L2-normalised."""
    return F.normalize(a.pow(2).mean(1).view(a.size(0), -1))


def kl_divergence(student_logits, teacher_logits, temperature: float, reduction: str = "mean"):
    """KL(T ‖ S) at temperature τ, F.kl_div's reduction ('mean': ÷ B·C, the reference's default)."""
    return kl_div(F.log_softmax(student_logits / temperature, dim=1), F.softmax(teacher_logits / temperature, dim=1),
                  reduction)


def student_loss(student_logits, student_acts, teacher_logits, teacher_acts, temperature: float, beta: float,
                 reduction: str = "mean"):
    """KT_loss_student: KL(T ‖ S) + β Σ_l mean((a(S_l) − a(T_l))²)."""
    loss = kl_divergence(student_logits, teacher_logits, temperature, reduction)
    at = 0
    for s, t in zip(student_acts, teacher_acts):
        at = at + beta * (attention(s) - attention(t)).pow(2).mean()
    return loss + at


def one_cycle(step: int, total: int, max_lr: float, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4, base_momentum: float = 0.85, max_momentum: float = 0.95):
    """(lr, momentum) of torch's OneCycleLR (cosine, two phases, cycle_momentum) after `step` scheduler steps."""
    initial = max_lr / div_factor
    phases = [(float(pct_start * total) - 1, initial, max_lr, max_momentum, base_momentum),
              (total - 1, max_lr, initial / final_div_factor, base_momentum, max_momentum)]
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            pct = (step - start) / (end - start)
            cos = math.cos(math.pi * pct) + 1
            return lr1 + (lr0 - lr1) / 2.0 * cos, m1 + (m0 - m1) / 2.0 * cos
        start = end
    raise AssertionError("unreachable")


def attention_layer_types(model) -> tuple:
    """Encoder blocks for a transformer (the reference's ViT activations), else every Conv2d."""
    try:
        from torchvision.models.vision_transformer import EncoderBlock
    except ImportError:  # torchvision absent: no ViT either
        return (nn.Conv2d,)
    return (EncoderBlock,) if any(isinstance(m, EncoderBlock) for m in model.modules()) else (nn.Conv2d,)


@register
class GKT(UnlearningMethod):
    name = "gkt"
    reads = frozenset({"forget"})
    scenarios = frozenset({"full_class"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): β between JiT's 5 and the official 250; both learning rates around the reference's
    search_space = {"beta": {"low": 1.0, "high": 250.0, "log": True}, "student_max_lr": {"low": 0.01, "high": 0.5, "log": True}, "generator_lr": {"low": 1.0e-3, "high": 0.1, "log": True}}

    @dataclass
    class Knobs:
        pseudo_batches: int = knob(1000, low=1, help="z batches (reference: 1000; ViT 101)")
        batch_size: int = knob(128, low=1, help="generated images per z batch (reference: 128; ViT 8)")
        generator_steps: int = knob(2, low=0, help="generator steps per z batch (reference: 2; ViT 1)")
        student_steps: int = knob(15, low=1, help="student steps per z batch (reference: 15; ViT 5)")
        z_dim: int = knob(128, low=4, help="reference: 128")
        threshold: float = knob(0.01, low=0.0, high=1.0, help="band-pass: keep samples with p_T(c_f) ≤ this")
        beta: float = knob(5.0, low=0.0, help="attention-transfer weight β (JiT: 5; official code: 250)")
        temperature: float = knob(1.0, low=0.0, low_open=True, help="KL temperature (reference: 1)")
        kl_reduction: str = knob("mean", choices=("mean", "batchmean"),
                                 help="mean: F.kl_div's default, ÷ B·C (reference); batchmean: ÷ B")
        generator_lr: float = knob(0.01, low=0.0, low_open=True, help="SGD, momentum 0.9 (reference: 0.01)")
        student_max_lr: float = knob(0.1, low=0.0, low_open=True, help="OneCycle max lr (reference: 0.1)")
        clip: float = knob(5.0, low=0.0, low_open=True, help="gradient-norm clip, both (reference: 5)")
        mode: str = knob("train", choices=("train", "eval"), help="teacher and student mode (reference: train)")
        patience: int = knob(1050, low=1, help="consecutive empty band-pass batches that end the run "
                                                "(reference: 1000 + 50 failed reloads)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        label = the_forget_class(y_f, "gkt")
        channels, side, width = x_f.shape[1:]
        if side != width or side % 4:
            raise ValueError(f"gkt's generator makes square images whose side is a multiple of 4; these are "
                             f"{side}x{width}")
        device = x_f.device
        teacher = frozen_copy(model, train=k.mode == "train")
        student = model.train(k.mode == "train")
        for m in student.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
        generator = make_generator(k.z_dim, side, channels).to(device).train()
        g_opt = engine.SGD(generator.parameters(), lr=k.generator_lr, momentum=0.9)
        s_opt = engine.SGD(student.parameters(), lr=0.0, momentum=0.0)
        total_steps = k.pseudo_batches * k.student_steps
        s_opt.lr, s_opt.momentum = one_cycle(0, total_steps, k.student_max_lr)
        types = attention_layer_types(model)
        repeat = k.generator_steps + k.student_steps
        z = torch.randn((k.batch_size, k.z_dim), generator=ctx.generator).to(device)
        calls = done = idx = empty = student_step = 0
        with LayerOutputs(student, types) as s_acts, LayerOutputs(teacher, types) as t_acts:
            while done < k.pseudo_batches:
                if calls == repeat:
                    z = torch.randn((k.batch_size, k.z_dim), generator=ctx.generator).to(device)
                    calls = 0
                x = generator(z)
                calls += 1
                with torch.no_grad():
                    keep = F.softmax(teacher.forward_normalized(x), dim=1)[:, label] <= k.threshold
                t_acts.clear()
                x = x[keep]
                if len(x) == 0:
                    empty += 1
                    if empty >= k.patience:
                        ctx.log(f"gkt: the band-pass left no sample in {empty} consecutive batches; stopping after "
                                f"{done}/{k.pseudo_batches} z batches (the reference gives up here too)")
                        break
                    continue
                empty = 0
                if idx % repeat < k.generator_steps:
                    s_logits = student.forward_normalized(x)
                    t_logits = teacher.forward_normalized(x)
                    s_acts.clear(), t_acts.clear()
                    loss = -kl_divergence(s_logits, t_logits, k.temperature, k.kl_reduction)
                    optimizer_step(g_opt, loss, clip_norm=k.clip, inputs=g_opt.params)
                else:
                    x = x.detach()
                    with torch.no_grad():
                        t_logits = teacher.forward_normalized(x)
                    teacher_acts = t_acts.clear()
                    s_logits = student.forward_normalized(x)
                    loss = student_loss(s_logits, s_acts.clear(), t_logits, teacher_acts, k.temperature, k.beta,
                                        k.kl_reduction)
                    optimizer_step(s_opt, loss, clip_norm=k.clip)
                    student_step += 1
                    s_opt.lr, s_opt.momentum = one_cycle(student_step, total_steps, k.student_max_lr)
                if (idx + 1) % repeat == 0:
                    done += 1
                    if done % max(1, k.pseudo_batches // 5) == 0:
                        ctx.log(f"gkt: {done}/{k.pseudo_batches} z batches, last loss {loss.item():.4f}")
                idx += 1
        s_opt.zero_grad()
        ctx.iteration(model)
