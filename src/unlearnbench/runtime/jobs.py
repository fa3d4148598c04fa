"""The job layer: which function each workflow rule runs, how it is called (by keyword, from the rule's named
inputs, outputs and params), and how its progress and errors reach the rule's log file.

Torch-free and free of the job server, which imports this module (no import cycle: workflow → jobserver → jobs).
"""
from __future__ import annotations

import importlib
import inspect
import logging
import sys
import traceback
from contextlib import contextmanager

# rule name -> "module:function"; every function is keyword-only, its parameter names equal to the rule's named
# input / output / params keys (plus `log` and `threads` when it takes them); tests/test_workflow.py checks them
TARGETS = {
    "prepare_source": "unlearnbench.datasets.rule:prepare_source",
    "prepare_experiment": "unlearnbench.datasets.experiment:prepare_experiment",
    "forget_request": "unlearnbench.scenarios:prepare_request",
    "forget_request_from_model": "unlearnbench.steps.requests:prepare_request_from_model",
    "baseline": "unlearnbench.steps.training:train_baseline",
    "retrain_oracle": "unlearnbench.steps.training:train_oracle",
    "sparse_baseline": "unlearnbench.steps.training:train_sparse_baseline",
    "unlearn": "unlearnbench.steps.unlearning:run_unlearning",
    "evaluate_original": "unlearnbench.steps.unlearning:evaluate_original",
    "aggregate": "unlearnbench.artifacts.report:aggregate",
    "statistics": "unlearnbench.artifacts.report:write_statistics",
    "figures": "unlearnbench.artifacts.uib.plots:make_figures",
    "tables": "unlearnbench.artifacts.uib.tables:uib_table",
    # Xu & Strohmer (rules/xs.smk)
    "xs_tabular_source": "unlearnbench.datasets.tabular:prepare_tabular_source",
    "xs_tabular": "unlearnbench.artifacts.xs.tabular:run_tabular",
    "xs_trajectories": "unlearnbench.artifacts.xs.images:trajectories",
    "xs_densities": "unlearnbench.artifacts.xs.images:densities",
    "xs_barycenter": "unlearnbench.artifacts.xs.images:barycenter_images",
    "xs_frontier_figure": "unlearnbench.artifacts.xs.plots:frontier_figure",
    "xs_frontier_table": "unlearnbench.artifacts.xs.plots:frontier_table",
    "xs_trajectory_figure": "unlearnbench.artifacts.xs.plots:trajectory_figure",
    "xs_density_figure": "unlearnbench.artifacts.xs.plots:density_figure",
    "xs_barycenter_figure": "unlearnbench.artifacts.xs.plots:barycenter_figure",
    "bias_strength_figure": "unlearnbench.artifacts.uib.plots:bias_strength_figure",
    "tuning_request": "unlearnbench.scenarios:prepare_tuning_request",
    "tuning_oracle": "unlearnbench.steps.training:train_tuning_oracle",
    "tune": "unlearnbench.tuning.tuning:tune",
    "sweep_summary": "unlearnbench.tuning.sensitivity:sweep_summary",
    "sensitivity": "unlearnbench.tuning.sensitivity:sensitivity_figure",
    "jit_table": "unlearnbench.artifacts.jit.report:jit_table",
    "jit_breakdown": "unlearnbench.artifacts.jit.report:jit_breakdown",
    "jit_entropy_figure": "unlearnbench.artifacts.jit.report:jit_entropy_figure",
    "jit_runtime_figure": "unlearnbench.artifacts.jit.report:jit_runtime_figure",
    "jit_toy_figure": "unlearnbench.artifacts.jit.toy:toy_figure",
    # the population stage (rules/population.smk)
    "population_member": "unlearnbench.steps.population:population_member",
    "incompetent_teacher": "unlearnbench.steps.population:incompetent_teacher",
    "forget_quality": "unlearnbench.artifacts.population:forget_quality",
}
PASSED_BY_RUNNER = ("log", "threads")  # not rule keys: the job's log file and its thread count
PROVENANCE = ("code",)  # rule params that only trigger reruns (the hash of the code a job runs): not passed


def resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def call_arguments(target: str, named: dict) -> dict:
    """The keyword arguments of `target` taken from `named` (the rule's keys plus log and threads); a rule key the
    target does not take, or a parameter no key provides, is a TypeError naming both (a rule/target mismatch)."""
    signature = inspect.signature(resolve(target))
    params = signature.parameters
    named = {k: v for k, v in named.items() if k not in PROVENANCE}
    unknown = [k for k in named if k not in params and k not in PASSED_BY_RUNNER]
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in named]
    if unknown or missing:
        raise TypeError(f"{target}: the rule passes {sorted(unknown)} which it does not take, and does not pass "
                        f"{sorted(missing)} which it needs")
    positional = [n for n, p in params.items() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    if positional:
        raise TypeError(f"{target}: job entry points take keyword-only parameters, not {positional}")
    return {k: v for k, v in named.items() if k in params}


@contextmanager
def logged(log_path: str):
    """Append a job's warnings and any traceback to its `log:` file, then re-raise so the job fails."""
    logging.captureWarnings(True)
    handler = logging.FileHandler(log_path)
    logging.getLogger("py.warnings").addHandler(handler)
    try:
        yield
    except BaseException as exc:
        with open(log_path, "a") as log:
            log.write("".join(traceback.format_exception(exc)))
        print(f"error: {exc} (full traceback in {log_path})", file=sys.stderr)
        raise
    finally:
        logging.getLogger("py.warnings").removeHandler(handler)
        handler.close()


def run_target(target: str, kwargs: dict, log_path: str | None, by_rule: bool = False) -> None:
    """Call "package.module:function"(**kwargs); with a log path, errors go to the log (`logged`). by_rule: kwargs
    are a rule's named keys (plus log and threads), mapped onto the target's parameters by `call_arguments` here,
    in the process that runs the job (the job server's fork, which has the target's module imported already)."""
    if log_path is None:
        resolve(target)(**(call_arguments(target, kwargs) if by_rule else kwargs))
        return
    with logged(log_path):
        resolve(target)(**(call_arguments(target, kwargs) if by_rule else kwargs))
