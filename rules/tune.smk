# The tune stage and the sweeps' artifacts (docs/tuning.md).
# A tuned run's knobs are chosen per (dataset, scenario, run) by a search on a tuning request (another draw or
# another class than the evaluated request) and the validation split, from the tuning seeds' starting models,
# against the tuning request's retrain oracle; no job here reads the test split (they load the experiment without
# it). The chosen knobs reach the run's evaluation jobs through chosen.json (rule unlearn, input tuned), which the
# job reads when it runs: an evaluation reruns whenever its search reruns. `tune` is an ordinary rule, not a
# checkpoint: any checkpoint in the DAG makes Snakemake (<= 9.27) corrupt job groups, the SLURM profile's batches
# of unlearning jobs (docs/slurm.md).

TUNE_CODE = {
    "tune": code_hash("unlearnbench.tuning.tuning", "unlearnbench.tuning.search"),
    "sensitivity": code_hash("unlearnbench.tuning.sensitivity"),
}
TUNED_RUNS = sorted({run for _, _, run in PLAN.tune_jobs()})
SWEPT_RUNS = [name for name, spec in PLAN.runs.items() if spec.points]


rule tuning_request:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        evaluated=rules.forget_request.output.request,
    output:
        request=f"{RESULTS}/{{dataset}}/requests/tune/{{scenario}}.npz",
        definition=f"{RESULTS}/{{dataset}}/requests/tune/{{scenario}}.json",
    params:
        scenario=lambda wc: wc.scenario,
        options=lambda wc: SCENARIO[wc.scenario],
        overrides=lambda wc: PLAN.tuning[wc.scenario]["request"],
        data_seed=PLAN.data_seed,
        code=tuning_request_code,
    log:
        f"{RESULTS}/logs/tuning_request/{{dataset}}_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tuning_request/{{dataset}}_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


# the tuning request's retrain oracle ("retrain" is never a run's name, so this folder is no run's)
rule tuning_oracle:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.tuning_request.output.request,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scenario}}/tune/retrain/seed{{seed}}/model.pt",
    params:
        training=training_params,
        seed=lambda wc: int(wc.seed),
        device=PLAN.device,
        code=CODE["training"],
    threads: 1
    resources:
        **job_resources("train"),
    log:
        f"{RESULTS}/logs/tuning_oracle/{{dataset}}_{{scenario}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tuning_oracle/{{dataset}}_{{scenario}}_seed{{seed}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


# The search. Its trials live in an Optuna journal under study/ (not a declared output, so a killed or re-planned
# search resumes from it: unlearnbench.tuning.search).
rule tune:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.tuning_request.output.request,
        starts=tune_starts,
        oracles=tune_oracles,
    output:
        chosen=f"{RESULTS}/{{dataset}}/{{scenario}}/tune/{{run}}/chosen.json",
        trials=f"{RESULTS}/{{dataset}}/{{scenario}}/tune/{{run}}/trials.csv",
    wildcard_constraints:
        run="|".join(map(re.escape, TUNED_RUNS)) if TUNED_RUNS else "^$",
    params:
        spec=lambda wc: PLAN.job(wc.run, wc.dataset, wc.scenario),
        tuning=lambda wc: PLAN.runs[wc.run].tune.as_dict(),
        identity=lambda wc: {"dataset": wc.dataset, "scenario": wc.scenario, "run": wc.run},
        storage=lambda wc: f"{RESULTS}/{wc.dataset}/{wc.scenario}/tune/{wc.run}/study",
        device=PLAN.device,
        code=TUNE_CODE["tune"],
    threads: 1
    resources:
        **job_resources("tune"),
    log:
        f"{RESULTS}/logs/tune/{{dataset}}_{{scenario}}_{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tune/{{dataset}}_{{scenario}}_{{run}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


# Sweeps: every point is a run (results/<dataset>/<scenario>/seed<k>/<run>~<knob>=<value>/); tables leave points out,
# summary/sweeps.csv summarises them per point, and one sensitivity figure per swept run shows them, the table row
# (configured or tuned knobs) marked.
localrules: sweep_summary, sensitivity


rule sweep_summary:
    input:
        runs=rules.aggregate.output.csv,
    output:
        sweeps=f"{RESULTS}/summary/sweeps.csv",
    params:
        code=TUNE_CODE["sensitivity"],
    log:
        f"{RESULTS}/logs/report/sweep_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/sweep_summary.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule sensitivity:
    input:
        sweeps=rules.sweep_summary.output.sweeps,
        runs=rules.aggregate.output.csv,
    output:
        pdf=f"{RESULTS}/paper/fig_sensitivity_{{family}}.pdf",
        png=report(f"{RESULTS}/paper/fig_sensitivity_{{family}}.png", caption="../report/fig_sensitivity.rst",
                   category="Tuning", subcategory="Sensitivity"),
    wildcard_constraints:
        family="|".join(map(re.escape, SWEPT_RUNS)) if SWEPT_RUNS else "^$",
    params:
        run=lambda wc: wc.family,
        labels=PLAN.labels,
        scenarios=lambda wc: {name: scenario_label(name) for name in PLAN.scenarios},
        code=TUNE_CODE["sensitivity"],
    log:
        f"{RESULTS}/logs/report/sensitivity_{{family}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/sensitivity_{{family}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


TUNING_ARTIFACTS = [f"{RESULTS}/paper/fig_sensitivity_{run}.{ext}" for run in SWEPT_RUNS for ext in ("pdf", "png")]
