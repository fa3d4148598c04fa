"""Population-stage jobs (rules/population.smk): a challenge-protocol member (one unlearning run from the seed-0
starting model, differing from the other members only in the method's randomness) and the incompetent teacher of
ZRF (a randomly initialised model of the dataset's architecture). Both write per-example outputs like every
evaluated run (evaluation.evaluate.save_run), so an attack reads logits and never retrains anything."""
from __future__ import annotations

from ..core import seeds
from ..core.logs import get_logger
from ..datasets.experiment import ExperimentData
from ..evaluation.evaluate import save_run
from ..nn import engine
from ..scenarios import ForgetRequest
from .training import new_model
from .unlearning import run_unlearning


def population_member(*, experiment: str, request: str, start: str, run: str, outputs: str, spec: dict,
                      identity: dict, member: int, device: str, threads: int, tuned: str | list = (),
                      log: str | None = None) -> dict:
    """Rule population_member: run `spec` on the seed-0 starting model `start` with the method's random generator
    seeded by the member index (member k draws what seed k's run would draw); no model file is kept."""
    return run_unlearning(experiment=experiment, request=request, start=start, model=None, run=run, outputs=outputs,
                          spec=spec, identity={**identity, "member": member}, seed=member, device=device,
                          threads=threads, tuned=tuned, log=log)


def incompetent_teacher(*, experiment: str, request: str, run: str, outputs: str, model_cfg: dict, identity: dict,
                        seed: int, device: str, threads: int, log: str | None = None) -> dict:
    """Rule incompetent_teacher: the dataset's architecture at its initialisation (seeded), evaluated under the
    request (ZRF's incompetent teacher, Chundawat et al. 2023)."""
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(experiment)
    req = ForgetRequest.load(request)
    engine.seed_everything(seeds.derive(seed, "incompetent_teacher"))
    net = new_model(data, model_cfg).to(dev).eval()
    get_logger(log).info(f"incompetent teacher: {model_cfg['arch']} at initialisation (seed {seed}) on {req.scenario}")
    identity = {**identity, "run": "incompetent_teacher", "method": "incompetent_teacher", "setting": "standard"}
    return save_run(net, data, req, dev, run, outputs, identity,
                    {"ut_seconds": 0.0, "ut_device_seconds": 0.0, "param_change": 0.0}, [])
