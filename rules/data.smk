# Dataset preparation (downloads run on the submit host under SLURM), the experiment's splits and
# colours, and one forget request per scenario.


localrules: prepare_source


rule prepare_source:
    output:
        f"{RESULTS}/sources/{{source}}/data.npz",
    params:
        mirror=config["data"]["mirror"],
        download_dir=config["data"]["download_dir"],
    log:
        f"{RESULTS}/logs/prepare_source/{{source}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_source/{{source}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/prepare_source.py"


rule prepare_experiment:
    input:
        lambda wc: f"{RESULTS}/sources/{dataset_cfg(wc)['source']}/data.npz",
    output:
        f"{RESULTS}/{{dataset}}/data/experiment.npz",
        f"{RESULTS}/{{dataset}}/data/experiment.json",
    params:
        dataset=lambda wc: {k: v for k, v in dataset_cfg(wc).items() if k in ("source", "split", "colour", "labels")},
        data_seed=config["data_seed"],
    log:
        f"{RESULTS}/logs/prepare_experiment/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_experiment/{{dataset}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/prepare_experiment.py"


rule forget_request:
    input:
        rules.prepare_experiment.output[0],
    output:
        f"{RESULTS}/{{dataset}}/requests/{{scenario}}.npz",
        f"{RESULTS}/{{dataset}}/requests/{{scenario}}.json",
    params:
        options=lambda wc: config["scenarios"][wc.scenario],
        data_seed=config["data_seed"],
    log:
        f"{RESULTS}/logs/forget_request/{{dataset}}_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_request/{{dataset}}_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/forget_request.py"
