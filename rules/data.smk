# Dataset preparation (downloads run on the submit host under SLURM), the experiment's splits and
# colours, and one forget request per scenario.


localrules: prepare_source


rule prepare_source:
    output:
        data=f"{RESULTS}/sources/{{source}}/data.npz",
    params:
        name=lambda wc: wc.source,
        mirror=PLAN.mirror,
        download_dir=PLAN.download_dir,
        code=CODE["datasets"],
    log:
        f"{RESULTS}/logs/prepare_source/{{source}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_source/{{source}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule prepare_experiment:
    input:
        source=lambda wc: f"{RESULTS}/sources/{dataset_cfg(wc)['source']}/data.npz",
    output:
        experiment=f"{RESULTS}/{{dataset}}/data/experiment.npz",
        manifest=f"{RESULTS}/{{dataset}}/data/experiment.json",
    params:
        dataset=lambda wc: {k: v for k, v in dataset_cfg(wc).items() if k in ("source", "split", "colour", "labels",
                                                                           "superclasses")},
        data_seed=PLAN.data_seed,
        code=CODE["experiment"],
    log:
        f"{RESULTS}/logs/prepare_experiment/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_experiment/{{dataset}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule forget_request:
    input:
        experiment=rules.prepare_experiment.output.experiment,
    output:
        request=f"{RESULTS}/{{dataset}}/requests/{{scenario}}.npz",
        definition=f"{RESULTS}/{{dataset}}/requests/{{scenario}}.json",
    wildcard_constraints:
        scenario="|".join(n for n in SCENARIO if n not in MODEL_REQUESTS) or "^$",
    params:
        scenario=lambda wc: wc.scenario,
        options=lambda wc: SCENARIO[wc.scenario],
        data_seed=PLAN.data_seed,
        code=scenario_code,
    log:
        f"{RESULTS}/logs/forget_request/{{dataset}}_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_request/{{dataset}}_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


# A request built from a trained model (a scenario that `needs_reference`, e.g. worst_case): its forget set is
# ranked by the reference baseline (the scenario's `reference_seed`), so it is the same for every seed.
rule forget_request_from_model:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        reference=lambda wc: f"{RESULTS}/{wc.dataset}/baseline/seed{SCENARIO[wc.scenario]['reference_seed']}/model.pt",
    output:
        request=f"{RESULTS}/{{dataset}}/requests/{{scenario}}.npz",
        definition=f"{RESULTS}/{{dataset}}/requests/{{scenario}}.json",
    wildcard_constraints:
        scenario="|".join(MODEL_REQUESTS) or "^$",
    params:
        scenario=lambda wc: wc.scenario,
        options=lambda wc: SCENARIO[wc.scenario],
        data_seed=PLAN.data_seed,
        device=PLAN.device,
        code=lambda wc: code_hash(*scenario_modules(wc), "unlearnbench.steps.requests"),
    threads: 1
    log:
        f"{RESULTS}/logs/forget_request/{{dataset}}_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_request/{{dataset}}_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"
