"""Why ot_repair raises Cramér's V on the bias setup at s = 0.9 with retain data as the baseline saw it.

Measures, on digits at bias strength 0.9 with `oracle: replace_forget` (retain data as the baseline saw it), seed 0,
the tests' setup (tests/conftest.py Setup): test accuracy, Cramér's V (test colour, prediction), the share of test
predictions that change when each test image is re-rendered in another colour, the share that then follow the new
colour, and, for ot_repair, the same with the test images repaired by the map fitted on the retain images.
  PYTHONPATH=src python benchmarks/ot_repair_colour.py      # ~2 min on 2 cores; output: benchmarks/ot_repair_colour.out
"""
import json, sys
from pathlib import Path
import numpy as np, torch, yaml
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import Setup, _defaults
from unlearnbench.datasets import prepare_dataset
from unlearnbench.evaluation import metrics
from unlearnbench.datasets.experiment import ExperimentData
from unlearnbench.steps.training import load_model
from unlearnbench.methods._feature_unlearning import BarycenterRepair
from unlearnbench.scenarios import ForgetRequest

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ot_repair_colour"); root.mkdir(parents=True, exist_ok=True)
cfg = _defaults(yaml.safe_load(open(Path(__file__).resolve().parents[1] / "config.yaml"))["datasets"]["digits_c"])
cfg["colour"]["bias_strength"] = 0.9
source = prepare_dataset("digits", root / "src", download_dir=root / "src" / "dl")
setup = Setup(root / "bias", source, cfg, "bias", {"pattern_fraction": 0.1, "oracle": "replace_forget"})
data = ExperimentData.load(setup.data)
req = ForgetRequest.load(setup.request)
n = data.n_classes
x_test, y_test, c_test = data.images("test"), data.labels("test"), data.colours("test")
rng = np.random.default_rng(0)
other = (c_test + rng.integers(1, n, size=len(c_test))) % n  # every test image re-rendered in another colour
x_other = data.images("test", colours=other)
x_r, y_r = req.retain_set(data)
z_r = req.retain_attribute(data)

def predict(path, x):
    model, _ = load_model(str(path), data, torch.device("cpu"))
    from unlearnbench.nn import engine
    xt = engine.to_device(x, None, torch.device("cpu"))
    return engine.predict_logits(model.eval(), xt).argmax(1).numpy()

def v(pred, colours):
    return metrics.bias_correlation(colours % n, pred, n)["cramers_v"]

def report(tag, path, lam=None):
    p = predict(path, x_test)
    p_other = predict(path, x_other)
    out = {"acc": round(float((p == y_test).mean()), 3), "V": round(v(p, c_test), 3),
           "flip share (colour changed)": round(float((p != p_other).mean()), 3),
           "follows new colour": round(float((p_other == other).mean()), 3)}
    if lam is not None:  # test images repaired with the map fit on the retain images, as the training images were
        flat_r = x_r.reshape(len(x_r), -1).astype(np.float64) / 255
        rep = BarycenterRepair("quantile", "shares", 0.01, 3000, seed=0).fit(flat_r, z_r)
        flat_t = x_test.reshape(len(x_test), -1).astype(np.float64) / 255
        xt = np.clip(np.rint(rep.transform(flat_t, c_test, lam, np.random.default_rng(0)) * 255), 0, 255).astype(np.uint8).reshape(x_test.shape)
        pt = predict(path, xt)
        out["test repaired: acc"] = round(float((pt == y_test).mean()), 3)
        out["test repaired: V"] = round(v(pt, c_test), 3)
    print(tag, json.dumps(out), flush=True)

report("baseline", setup.baseline)
report("oracle", setup.oracle)
for lam in (1.0, 0.5):
    setup.run_job("ot_repair", {"lam": lam}, f"ot{lam}")
    report(f"ot_repair λ={lam}", root / "bias" / f"ot{lam}.pt", lam)
setup.run_job("finetune", {}, "ft")
report("FT", root / "bias" / "ft.pt")
