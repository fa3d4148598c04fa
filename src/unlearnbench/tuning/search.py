"""The search of the tune stage: every point of a grid, or Optuna's TPE for a trial budget; seeded, and resumable
from an Optuna journal file (a killed search continues where it stopped and ends where an uninterrupted one
would have).

Torch-free (the objective is a callable); Optuna is imported when a search runs. Determinism: TPE's suggestion for
the k-th finished trial comes from a sampler seeded with (seed, k) and the k finished trials before it, so a study
resumed after a kill suggests what the uninterrupted study would have (a trial cut off by the kill is marked
failed and not counted); with the same Optuna version, the same space, seed and objective give the same trials.
A grid trial is keyed by its point: a grid that gains or loses a value reuses every point already tried.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

# a trial's attributes (Optuna user attrs): the point, and what the objective reported
POINT_ATTR = "point"
RESULT_ATTR = "result"


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def point_key(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


def _plain(value):
    """JSON-safe values for the journal (NaN/inf as None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def _distribution(optuna, dim: dict):
    if dim["kind"] == "choice":
        return optuna.distributions.CategoricalDistribution(list(dim["choices"]))
    if dim["kind"] == "int":
        return optuna.distributions.IntDistribution(dim["low"], dim["high"], log=dim["log"], step=dim["step"] or 1)
    return optuna.distributions.FloatDistribution(dim["low"], dim["high"], log=dim["log"], step=dim["step"])


def sampler_seed(seed: int, finished: int) -> int:
    """The TPE sampler's seed for the trial after `finished` finished trials."""
    return (int(seed) * 1_000_003 + 7919 * int(finished) + 17) % (2 ** 31)


def open_study(storage: str | Path, name: str):
    """The study `name` in the journal file `storage` (created if absent); a trial a killed search left running is
    marked failed (it has no result, so `records` leaves it out and the search redoes it)."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    study = optuna.create_study(study_name=name, storage=JournalStorage(backend), direction="minimize",
                                load_if_exists=True)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


def records(study) -> list[dict]:
    """Finished trials as {number, state, point, value, result}; a trial without a result (cut off by a kill) is
    left out."""
    optuna = _optuna()
    out = []
    for t in study.get_trials(deepcopy=False):
        if RESULT_ATTR not in t.user_attrs or t.state not in (optuna.trial.TrialState.COMPLETE,
                                                             optuna.trial.TrialState.FAIL):
            continue
        out.append({"number": t.number, "state": t.state.name, "point": t.user_attrs.get(POINT_ATTR, t.params),
                    "value": t.value, "result": t.user_attrs.get(RESULT_ATTR, {})})
    return out


def run_search(tune: dict, evaluate: Callable[[dict], dict], storage: str | Path, name: str,
               log: Callable[[str], None] = print) -> list[dict]:
    """Search `tune` (sweeps.TuneSpec.as_dict) with `evaluate(point) -> {"value": float or None (failed), ...}`,
    recording every trial in study `name` of journal `storage`; returns the finished trials (`records`).

    grid: every point of tune["points"] not already in the study, in order. tpe: TPE trials until
    tune["trials"] trials have finished (failed ones count: a space where every point diverges still ends)."""
    optuna = _optuna()
    study = open_study(storage, name)
    if tune["search"] == "grid":
        done = {point_key(r["point"]) for r in records(study)}
        todo = [p for p in tune["points"] if point_key(p) not in done]
        log(f"grid search: {len(tune['points'])} points, {len(tune['points']) - len(todo)} already in {storage}")
        for i, point in enumerate(todo):
            result = _plain(evaluate(dict(point)))
            value = result.get("value")
            state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
            study.add_trial(optuna.trial.create_trial(state=state, value=value,
                                                      user_attrs={POINT_ATTR: dict(point), RESULT_ATTR: result}))
            log(f"grid point {i + 1}/{len(todo)} {point}: objective {value}")
        return records(study)
    distributions = {d["key"]: _distribution(optuna, d) for d in tune["dimensions"]}
    finished = len(records(study))
    if finished:
        log(f"TPE: resuming study {name} of {storage} at {finished}/{tune['trials']} finished trials")
    while finished < tune["trials"]:
        study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(tune["seed"], finished),
                                                   n_startup_trials=tune["startup_trials"], constant_liar=False,
                                                   multivariate=False)
        trial = study.ask(distributions)
        point = dict(trial.params)
        result = _plain(evaluate(dict(point)))
        trial.set_user_attr(POINT_ATTR, point)
        trial.set_user_attr(RESULT_ATTR, result)
        if result.get("value") is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, result["value"])
        finished += 1
        log(f"TPE trial {finished}/{tune['trials']} {point}: objective {result.get('value')}")
    return records(study)
