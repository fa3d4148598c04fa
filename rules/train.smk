# Baseline (one per seed, on the full training set) and retrain oracles (one per scenario, reference and seed, from
# scratch on D \ ΔD as the scenario defines it). Each oracle is also evaluated here, as the method of its name:
# "retrain" (every scenario), and the further references a scenario type declares (bias: "retrain_replace").


rule baseline:
    input:
        experiment=rules.prepare_experiment.output.experiment,
    output:
        model=f"{RESULTS}/{{dataset}}/baseline/seed{{seed}}/model.pt",
        # the sparse baseline's rewind point (sparse_baseline.rewind): the state after epoch rewind_epoch
        **({"rewind": f"{RESULTS}/{{dataset}}/baseline/seed{{seed}}/rewind.pt"} if SPARSE_REWIND else {}),
    params:
        training=training_params,
        rewind_epoch=sparse_rewind_epoch,
        seed=lambda wc: int(wc.seed),
        device=PLAN.device,
        code=CODE["training"],
    threads: 1
    resources:
        **job_resources("train"),
    log:
        f"{RESULTS}/logs/baseline/{{dataset}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baseline/{{dataset}}_seed{{seed}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule retrain_oracle:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.forget_request.output.request,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{oracle}}/model.pt",
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{oracle}}/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{oracle}}/outputs.npz",
    wildcard_constraints:
        oracle="|".join(PLAN.all_oracles),
    params:
        training=training_params,
        identity=identity,
        reference=lambda wc: wc.oracle,
        seed=lambda wc: int(wc.seed),
        device=PLAN.device,
        code=CODE["training"],
    threads: 1
    resources:
        **job_resources("train"),
    log:
        f"{RESULTS}/logs/{{oracle}}/{{dataset}}_{{scenario}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{oracle}}/{{dataset}}_{{scenario}}_seed{{seed}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


# The Sparsity setting's starting model (Unlearn-Sparse OMP): the dense baseline pruned one-shot to the run's
# sparsity, rewound to the baseline's epoch-k state (sparse_baseline.rewind) and retrained on the full training set
# with the mask fixed; one per (dataset, sparsity, seed),
# shared by every sparsity run and both scenarios. Its params hold only the dataset's recipe and the retrain
# epochs, so no method knob reruns it. Runs ask for it through their wrapper's declared `start`.
rule sparse_baseline:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        dense=rules.baseline.output.model,
        **({"rewind": rules.baseline.output.rewind} if SPARSE_REWIND else {}),
    output:
        model=f"{RESULTS}/{{dataset}}/sparse_baseline/sparsity{{sparsity}}/seed{{seed}}/model.pt",
    wildcard_constraints:
        sparsity=r"[0-9][0-9.e-]*",
    params:
        training=training_params,
        sparsity=lambda wc: float(wc.sparsity),
        epochs=sparse_retrain_epochs,
        rewind_epoch=sparse_rewind_epoch,
        seed=lambda wc: int(wc.seed),
        device=PLAN.device,
        code=CODE["training"],
    threads: 1
    resources:
        **job_resources("train"),
    log:
        f"{RESULTS}/logs/sparse_baseline/{{dataset}}_sparsity{{sparsity}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sparse_baseline/{{dataset}}_sparsity{{sparsity}}_seed{{seed}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"
