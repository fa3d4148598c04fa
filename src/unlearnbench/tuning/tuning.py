"""The tune stage (rules/tune.smk, docs/tuning.md): knobs selected on a tuning request and the validation split,
never on test data.

- rule tuning_request (scenarios.prepare_tuning_request): another request of the scenario's type, disjoint from
  the evaluated one (another draw, another class).
- rule tuning_oracle (training.train_tuning_oracle): the retrain oracle of the tuning request, per tuning seed.
- checkpoint tune (`tune`): searches a run's declared space (grid or Optuna TPE, unlearnbench.tuning.search). A trial
  unlearns the tuning request from each tuning seed's starting model with the trial's knobs and scores the result
  by its distance to that seed's tuning oracle on named terms (sweeps.TERMS), all computed on the tuning request's
  forget / retain points and the validation split. The chosen point goes to chosen.json, which the run's evaluation
  jobs read (config.Plan.tuned_job).

Every job here loads the experiment without its test split (ExperimentData.load(test=False)): the arrays are not
read from the file, and any access raises TestSplitAccessError.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..nn import checkpoint, engine
from ..evaluation import metrics
from ..core import seeds
from ..config import sweeps
from ..datasets import colour as colour_mod
from ..core.errors import InputFileError
from ..datasets.experiment import ExperimentData
from ..core.io import atomic_path, atomic_write_json
from ..core.logs import get_logger
from ..methods import UnlearnContext, build_method
from ..scenarios import ForgetRequest
from .search import point_key, run_search
from ..steps.training import load_model, new_model

RETAIN_SAMPLE = 5000  # tuning retain points the objective reads (a fixed subsample: MIA members, retain accuracy)


def _check_tuning_request(req: ForgetRequest, path: str) -> None:
    if not req.description.get("tuning"):
        raise InputFileError(f"{path}: not a tuning request (rule tuning_request writes them); the tune stage runs "
                             f"on a request distinct from the evaluated one")


class Probe:
    """What the objective reads, fixed for one tune job: the tuning request's forget set, a fixed subsample of its
    retain set, and the validation split rendered as the test split is (on coloured data the test images carry
    colours drawn independently of the label: the validation images are re-coloured so, once, with a fixed seed;
    unlearnbench.datasets.experiment)."""

    def __init__(self, data: ExperimentData, req: ForgetRequest, device, seed: int):
        rng = np.random.default_rng([seed, 0x70E])
        x_r, y_r = req.retain_set(data)
        keep = np.sort(rng.permutation(len(y_r))[:RETAIN_SAMPLE])
        self.val_colours = None
        if data.coloured:
            n_colours = data.manifest["colour"]["n_colours"]
            self.val_colours = colour_mod.random_colours(len(data.labels("val")), n_colours, rng)
        self.sets = {"forget": req.forget_set(data), "retain": (x_r[keep], y_r[keep]),
                     "val": (data.images("val", colours=self.val_colours), data.labels("val"))}
        self.tensors = {k: engine.to_device(x, None, device) for k, (x, _) in self.sets.items()}
        self.n_classes = data.n_classes

    def outputs(self, model) -> dict[str, np.ndarray]:
        return {k: engine.predict_logits(model, x).numpy() for k, x in self.tensors.items()}

    def metrics(self, out: dict, seed: int) -> dict[str, float]:
        """The objective's metrics of one model (every term of sweeps.TERMS this data has)."""
        y = {k: labels for k, (_, labels) in self.sets.items()}
        result = {
            "forget_acc": metrics.accuracy(y["forget"], out["forget"].argmax(1)),
            "retain_acc": metrics.accuracy(y["retain"], out["retain"].argmax(1)),
            "val_acc": metrics.accuracy(y["val"], out["val"].argmax(1)),
            "mia": metrics.mia_efficacy_svc(out["retain"], y["retain"], out["val"], y["val"], out["forget"],
                                            y["forget"], seed=seeds.derive(seed, "attack")),
        }
        if self.val_colours is not None:
            corr = metrics.bias_correlation(self.val_colours % self.n_classes, out["val"].argmax(1), self.n_classes)
            result["bias"] = float(corr["cramers_v"])
        return {k: float(v) for k, v in result.items()}

    @staticmethod
    def predictions(out: dict) -> np.ndarray:
        return np.concatenate([out[k].argmax(1) for k in sorted(out)])


def _finite(out: dict) -> bool:
    return all(np.isfinite(v).all() for v in out.values())


def fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def objective_value(term_values: dict, weights: dict) -> float:
    """Σ weight · term over the terms with a weight > 0 that the data has (e.g. `bias` on coloured data only)."""
    return float(sum(w * term_values[t] for t, w in weights.items() if w > 0 and t in term_values))


def select(trials: list[dict], tune: dict) -> dict:
    """The best finished trial under the current objective weights (lowest value; ties: the earlier grid point,
    or the earlier TPE trial). Grid: only the current grid's points compete."""
    weights = tune["objective"]
    candidates = []
    order = {point_key(p): i for i, p in enumerate(tune["points"])} if tune["search"] == "grid" else None
    for t in trials:
        if t["state"] != "COMPLETE" or (order is not None and point_key(t["point"]) not in order):
            continue
        value = objective_value(t["result"]["terms"], weights)
        candidates.append((value, order[point_key(t["point"])] if order is not None else t["number"], t))
    if not candidates:
        raise RuntimeError("every knob setting the tune stage tried failed (diverged or raised; see the trials in "
                           "the log): narrow the space to values the method survives")
    value, _, best = min(candidates, key=lambda c: c[:2])
    return {**best, "value": value}


def tune(*, experiment: str, request: str, starts: list[str], oracles: list[str], chosen: str, trials: str,
         spec: dict, tuning: dict, identity: dict, storage: str, device: str, threads: int,
         log: str | None = None) -> dict:
    """Checkpoint tune: search `tuning` (sweeps.TuneSpec.as_dict) for run `spec` (config.RunSpec.job: the run's
    config knobs for this experiment) on the tuning request `request`, from the starting models `starts` of the
    tuning seeds `tuning["seeds"]` against their tuning oracles `oracles`; trials in the Optuna journal under
    `storage` (resumed if present); the chosen point to `chosen` (JSON), every trial to `trials` (CSV)."""
    log_fn = get_logger(log).info
    wall0, cpu0 = time.perf_counter(), time.process_time()
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(experiment, test=False)
    req = ForgetRequest.load(request)
    _check_tuning_request(req, request)
    tune_seeds = [int(s) for s in tuning["seeds"]]
    if not len(tune_seeds) == len(starts) == len(oracles):
        raise ValueError(f"tune: {len(tune_seeds)} seeds, {len(starts)} starting models, {len(oracles)} oracles")
    probe = Probe(data, req, dev, tune_seeds[0])
    references = []
    for seed, start, oracle in zip(tune_seeds, starts, oracles):
        start_net, start_meta = load_model(start, data, dev)
        oracle_net, _ = load_model(oracle, data, dev)
        start_out, oracle_out = probe.outputs(start_net), probe.outputs(oracle_net)
        references.append({"seed": seed, "net": start_net, "meta": start_meta,
                           "start_pred": probe.predictions(start_out),
                           "start": probe.metrics(start_out, seed), "oracle": probe.metrics(oracle_out, seed)})
        log_fn(f"seed {seed}: starting model {references[-1]['start']}, tuning oracle {references[-1]['oracle']}")
    terms = [t for t in sweeps.TERMS if t in references[0]["oracle"]]
    where = f"methods.{spec['run']}.tune"
    inputs_cache: dict = {}

    def evaluate(point: dict) -> dict:
        from ..steps.unlearning import method_inputs

        knobs, s_knobs = sweeps.split(point)
        method = build_method(spec["method"], {**spec["knobs"], **knobs}, where=where, setting=spec["setting"],
                              setting_knobs={**spec["setting_knobs"], **s_knobs})
        reads = frozenset(method.reads)
        if reads not in inputs_cache:
            inputs_cache[reads] = method_inputs(method, data, req, dev)
        per_seed, acting, t0 = [], [], time.perf_counter()
        for ref in references:
            net = copy.deepcopy(ref["net"])
            generator = engine.seed_everything(seeds.derive(ref["seed"], "unlearn"))
            ctx = UnlearnContext(dev, generator, log=lambda message: None, start_meta=ref["meta"],
                                 model_factory=lambda meta=ref["meta"]: new_model(data, meta["model_cfg"]))
            try:
                method.unlearn(net, inputs_cache[reads], ctx)
            except FloatingPointError as exc:
                return {"value": None, "error": f"seed {ref['seed']}: {exc}"}
            out = probe.outputs(net)
            if not _finite(out):
                return {"value": None, "error": f"seed {ref['seed']}: outputs not finite (the method diverged)"}
            per_seed.append(probe.metrics(out, ref["seed"]))
            changed = probe.predictions(out) != ref["start_pred"]
            acting.append(float(changed.mean()))
        term_values = {t: float(np.mean([abs(m[t] - ref["oracle"][t]) for m, ref in zip(per_seed, references)]))
                       for t in terms}
        return {"value": objective_value(term_values, tuning["objective"]), "terms": term_values,
                "metrics": {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]},
                "changed": float(np.mean(acting)), "acts": bool(max(acting) > 0),
                "seconds": time.perf_counter() - t0}

    # the study's identity: what a trial's result depends on. Grid trials are keyed by their point and report every
    # term, so the grid's points and the objective weights stay out (a grid edit reruns only new points; new weights
    # re-select without rerunning); TPE's trials depend on both.
    parts = {"method": spec["method"], "setting": spec["setting"], "knobs": spec["knobs"],
             "setting_knobs": spec["setting_knobs"], "code": spec["code"], "search": tuning["search"],
             "seeds": tune_seeds, "data": data.manifest["sha256"], "request": checkpoint.file_sha256(request),
             "starts": [checkpoint.file_sha256(p) for p in starts],
             "oracles": [checkpoint.file_sha256(p) for p in oracles], "device": dev.type}
    if tuning["search"] == "tpe":
        parts.update({k: tuning[k] for k in ("dimensions", "seed", "startup_trials", "objective")})
    name = fingerprint(parts)
    journal = Path(storage) / f"{name[:16]}.journal"
    log_fn(f"tuning {spec['run']} ({tuning['search']}) on {req.description['definition']}; study {journal}")
    finished = run_search(tuning, evaluate, journal, name, log=log_fn)
    # the trials of this search: TPE's first `trials` finished ones (a study run with a larger budget before holds
    # more; its first N are what an N-trial search gives), the grid's current points
    current = finished[:tuning["trials"]] if tuning["search"] == "tpe" else [
        t for t in finished if point_key(t["point"]) in {point_key(p) for p in tuning["points"]}]
    best = select(current, tuning)
    complete = [t for t in current if t["state"] == "COMPLETE"]
    result = {
        **identity, "method": spec["method"], "setting": spec["setting"],
        "point": best["point"], "knobs": {**spec["knobs"], **sweeps.split(best["point"])[0]},
        "setting_knobs": {**spec["setting_knobs"], **sweeps.split(best["point"])[1]},
        "search": tuning["search"], "objective": tuning["objective"], "terms": terms, "value": best["value"],
        "term_values": best["result"]["terms"], "metrics": best["result"]["metrics"],
        "oracle_metrics": [r["oracle"] for r in references], "start_metrics": [r["start"] for r in references],
        "n_trials": len(tuning["points"]) if tuning["search"] == "grid" else tuning["trials"],
        "n_complete": len(complete), "n_failed": len(current) - len(complete),
        "n_acting": sum(bool(t["result"].get("acts")) for t in complete),
        "chosen_acts": bool(best["result"].get("acts")), "chosen_changed": best["result"].get("changed"),
        "seeds": tune_seeds,
        "request": {k: req.description.get(k) for k in ("n_forget", "definition", "overrides")},
        "study": str(journal), "study_name": name,
        # this call's time (a resumed search counts only what it ran): CPU seconds are the process's own
        "wall_seconds": time.perf_counter() - wall0, "cpu_seconds": time.process_time() - cpu0,
    }
    _write_trials(trials, current, tuning)
    atomic_write_json(chosen, result)
    log_fn(f"chosen {best['point']}: objective {best['value']:.4g} ({best['result']['terms']}); "
           f"{result['n_acting']} of {len(complete)} finished trials changed a prediction")
    return result


def _write_trials(path: str, trials: list[dict], tuning: dict) -> None:
    import pandas as pd

    rows = []
    for t in trials:
        res = t["result"]
        row = {"number": t["number"], "state": t["state"], **{f"knob:{k}": v for k, v in t["point"].items()},
               "objective": (objective_value(res["terms"], tuning["objective"]) if t["state"] == "COMPLETE"
                             else None)}
        row.update({f"term:{k}": v for k, v in (res.get("terms") or {}).items()})
        row.update({f"metric:{k}": v for k, v in (res.get("metrics") or {}).items()})
        row.update({"changed": res.get("changed"), "acts": res.get("acts"), "error": res.get("error")})
        rows.append(row)
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
