"""Unlearning jobs: one method (in its setting) applied to a seed's starting model, timed alone, then evaluated;
and the baseline evaluated under a request as the reference run "original"."""
from __future__ import annotations

import copy
import time

import torch

from ..nn import engine
from ..core import seeds
from ..evaluation.evaluate import iteration_probe, parameters_changed, save_run
from ..datasets.experiment import ExperimentData
from ..core.logs import get_logger
from ..methods import UnlearnContext, UnlearnData, build_method
from ..scenarios import ForgetRequest
from .training import load_model, new_model, save_model


def method_inputs(method, data: ExperimentData, request: ForgetRequest, dev) -> UnlearnData:
    """The data the method (a wrapper: with its inner method's) declared, on the device; nothing else."""
    sources = {"forget": request.forget_set, "retain": request.retain_set,
               "forget_counterfactual": request.forget_counterfactual, "retain_attribute": request.retain_attribute}
    sets = {}
    for kind in sorted(method.reads):
        value = sources[kind](data)
        if value is None:
            continue
        sets[kind] = (torch.as_tensor(value, device=dev) if kind == "retain_attribute"
                      else engine.to_device(*value, dev))
    return UnlearnData(declared=method.reads, n_train=len(data.labels("train")), n_classes=data.n_classes,
                       owner=f"method {method.name!r}", **sets)


def _timed(dev: torch.device):
    """Start a wall clock and a device clock (CUDA events on GPU, process CPU time on CPU)."""
    if dev.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        t0 = time.perf_counter()

        def stop():
            end.record()
            torch.cuda.synchronize()
            return time.perf_counter() - t0, start.elapsed_time(end) / 1000.0
        return stop
    t0, c0 = time.perf_counter(), time.process_time()
    return lambda: (time.perf_counter() - t0, time.process_time() - c0)


def run_unlearning(*, experiment: str, request: str, start: str, model: str | None, run: str, outputs: str, spec: dict,
                   identity: dict, seed: int, device: str, threads: int, tuned: str | list = (),
                   log: str | None = None) -> dict:
    """Rule unlearn: apply run `spec` (config.RunSpec.job: method, setting, knobs) to the seed's starting model
    (`start`: the baseline, or the model the setting's wrapper declares, e.g. the sparse baseline), time the method
    alone (a setting's own work, e.g. UIB's sampling and regularisation, included; the per-iteration probe not),
    and save the model (unless `model` is None: population members keep their outputs only), its outputs and the run
    record. A tuned run's `spec` is pending (config.RunSpec.pending_job): it runs the knobs chosen in `tuned` (the tune
    stage's chosen.json), read and validated here."""
    log_fn = get_logger(log).info
    if spec.get("pending_tune"):
        spec = _resolve_tuned(spec, tuned)
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(experiment)
    req = ForgetRequest.load(request)
    net, start_meta = load_model(start, data, dev)
    method = build_method(spec["method"], spec["knobs"], where=f"methods.{spec['run']}", setting=spec["setting"],
                          setting_knobs=spec["setting_knobs"])
    inputs = method_inputs(method, data, req, dev)
    probe, trace = iteration_probe(data, req, dev)
    probe(0, net)
    before = copy.deepcopy(net.state_dict())
    generator = engine.seed_everything(seeds.derive(seed, "unlearn"))
    ctx = UnlearnContext(dev, generator, log=log_fn, on_iteration=probe, start_meta=start_meta,
                         model_factory=lambda: new_model(data, start_meta["model_cfg"]))
    log_fn(f"unlearning with {spec['method']} {spec['knobs']} in setting {spec['setting']} {spec['setting_knobs']} "
           f"on {req.scenario}, seed {seed}")
    stop = _timed(dev)
    try:
        method.unlearn(net, inputs, ctx)
    except engine.DivergedError as exc:
        raise engine.DivergedError(f"methods.{spec['run']}: {exc}; no model was saved. Lower the run's learning "
                                   f"rate (methods.{spec['run']}.lr)") from exc
    wall, device_seconds = stop()
    wall -= ctx.excluded_seconds
    device_seconds = max(0.0, device_seconds - ctx.excluded_seconds)
    change = parameters_changed(before, net)
    log_fn(f"unlearning took {wall:.2f}s (evaluation between iterations excluded); parameter change {change:.4g}")
    if model is not None:
        save_model(model, net, data, start_meta["model_cfg"],
                   {"seed": seed, "run": spec["run"], "method": spec["method"], "knobs": spec["knobs"]})
    identity = {**identity, **{k: spec.get(k) for k in ("run", "method", "setting", "knobs", "setting_knobs",
                                                         "overridden", "start", "start_params", "code", "sweep_of",
                                                         "point", "knobs_from", "tuned")}}
    return save_run(net, data, req, dev, run, outputs, identity,
                    {"ut_seconds": wall, "ut_device_seconds": device_seconds, "param_change": change}, trace)


def _resolve_tuned(spec: dict, tuned) -> dict:
    """A tuned run's job with the knobs of the tune stage's chosen.json (config.resolve_tuned)."""
    from ..config.plan import resolve_tuned
    from ..core.errors import InputFileError

    path = tuned if isinstance(tuned, str) else (list(tuned) or [None])[0]
    if path is None:
        raise InputFileError(f"run {spec['run']!r} is tuned but its job was given no chosen.json (rule unlearn, "
                             f"input tuned)")
    return resolve_tuned(spec, path)


def evaluate_original(*, experiment: str, request: str, baseline: str, run: str, outputs: str, identity: dict,
                      device: str, threads: int, log: str | None = None) -> dict:
    """Rule evaluate_original: the baseline before unlearning, evaluated under a request as method "original"."""
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(experiment)
    req = ForgetRequest.load(request)
    net, _ = load_model(baseline, data, dev)
    get_logger(log).info(f"evaluating {baseline} on {req.scenario}")
    identity = {**identity, "run": "original", "method": "original", "setting": "standard"}
    return save_run(net, data, req, dev, run, outputs, identity,
                    {"ut_seconds": 0.0, "ut_device_seconds": 0.0, "param_change": 0.0}, [])
