"""Why engine.SGD / nn.optim.Adam exist (issue: could methods use torch.optim directly?): the cost of the first
optimizer step in a fresh process, torch.optim against ours, side by side, each in its own fresh interpreter (the
first torch.optim step imports torch._dynamo), and with torch._dynamo imported beforehand (what a job-server
preload would do; SLURM jobs have no job server). Also checks that both give bit-identical parameters after
5 steps (the equality tests in tests/test_engine.py pin that for every method's settings).

  PYTHONPATH=src python benchmarks/optimizer_first_step.py     # output: benchmarks/optimizer_first_step.out
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

CHILD = r'''
import json, sys, time
which, preload = sys.argv[1], sys.argv[2] == "1"
import torch
if preload:
    import torch._dynamo  # noqa: F401
from unlearnbench.nn import engine, optim
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
t_build = time.perf_counter()
if which == "torch_sgd":
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
elif which == "ours_sgd":
    opt = engine.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
elif which == "torch_adam":
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
else:
    opt = optim.Adam(model.parameters(), lr=1e-3)
build = time.perf_counter() - t_build
times = []
for step in range(5):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    for p in model.parameters():
        p.grad = None
    loss.backward()
    t = time.perf_counter()
    opt.step()
    times.append(time.perf_counter() - t)
print(json.dumps({"first": times[0] + build, "later": sorted(times[1:])[1],
                  "params": [p.detach().flatten().tolist()[:50] for p in model.parameters()]}))
'''


def run(which: str, preload: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, "1" if preload else "0"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(repeats: int = 3):
    rows = {}
    for preload in (False, True):
        for which in ("torch_sgd", "ours_sgd", "torch_adam", "ours_adam"):
            results = [run(which, preload) for _ in range(repeats)]
            rows[(which, preload)] = results
            first = statistics.median(r["first"] for r in results)
            later = statistics.median(r["later"] for r in results)
            print(f"{which:10s} dynamo preloaded={preload!s:5s}  construction + first step {first * 1e3:8.1f} ms   later steps "
                  f"{later * 1e3:6.3f} ms", flush=True)
    for a, b in (("torch_sgd", "ours_sgd"), ("torch_adam", "ours_adam")):
        same = rows[(a, False)][0]["params"] == rows[(b, False)][0]["params"]
        ratio = statistics.median(r["first"] for r in rows[(a, False)]) / \
            statistics.median(r["first"] for r in rows[(b, False)])
        print(f"{a} / {b}: construction + first step {ratio:.0f}x slower in a fresh process; parameters after 5 steps "
              f"{'bit-identical' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
