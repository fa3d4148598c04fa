# The population stage (config `population:`, PLAN.population; docs/forget_quality.md): per-example forgetting
# quality from populations of models. Per (dataset, scenario): 2N retrain oracles (seeds 0..2N-1: the reference
# population and the retrained-vs-retrained ceiling), N originals (seeds 0..N-1), per method run N unlearned models
# (shadow protocol: the ordinary seed-k unlearning jobs; challenge protocol: population_member jobs from the seed-0
# starting model), ZRF's incompetent teacher; then one forget_quality job reads their saved per-example outputs.
# Every member is an ordinary job: cached, resumable, grouped with the unlearning jobs on SLURM.

localrules: forget_quality


POP_CODE = {
    "forget_quality": code_hash("unlearnbench.artifacts.population", "unlearnbench.evaluation.population"),
    "teacher": code_hash("unlearnbench.steps.population", "unlearnbench.steps.training"),
}


POPULATION_OUTPUTS = population_outputs()


rule population_member:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.forget_request.output.request,
        start=lambda wc: starting_model(seed0(wc)),
        tuned=tuned_input,
    output:
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/population/{{run}}/member{{member}}/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/population/{{run}}/member{{member}}/outputs.npz",
    wildcard_constraints:
        run="|".join(map(re.escape, PLAN.runs)) if PLAN.runs else "^$",
        member=r"\d+",
    params:
        spec=run_job,
        identity=lambda wc: {"dataset": wc.dataset, "scenario": wc.scenario, "seed": 0},
        member=lambda wc: int(wc.member),
        device=PLAN.device,
    threads: 1
    group:
        "unlearn"
    resources:
        **job_resources("unlearn"),
    log:
        f"{RESULTS}/logs/population_member/{{dataset}}_{{scenario}}_{{run}}_member{{member}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/population_member/{{dataset}}_{{scenario}}_{{run}}_member{{member}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule incompetent_teacher:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.forget_request.output.request,
    output:
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/population/incompetent_teacher/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/population/incompetent_teacher/outputs.npz",
    params:
        model_cfg=lambda wc: PLAN.training(wc.dataset)["model"],
        identity=lambda wc: {"dataset": wc.dataset, "scenario": wc.scenario, "seed": 0},
        seed=0,
        device=PLAN.device,
        code=POP_CODE["teacher"],
    threads: 1
    resources:
        **job_resources("unlearn"),
    log:
        f"{RESULTS}/logs/incompetent_teacher/{{dataset}}_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/incompetent_teacher/{{dataset}}_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule forget_quality:
    input:
        retrained=lambda wc: [f"{RESULTS}/{wc.dataset}/{wc.scenario}/seed{k}/retrain/outputs.npz"
                              for k in range(2 * POP["size"])],
        original=lambda wc: [f"{RESULTS}/{wc.dataset}/{wc.scenario}/seed{k}/original/outputs.npz"
                             for k in range(POP["size"])],
        unlearned=lambda wc: [p for run in population_runs(wc)
                              for p in population_members(wc.dataset, wc.scenario, run)],
        teacher=rules.incompetent_teacher.output.outputs,
    output:
        summary=f"{RESULTS}/{{dataset}}/{{scenario}}/population/forget_quality.csv",
        per_example=f"{RESULTS}/{{dataset}}/{{scenario}}/population/per_example.csv",
        curves=f"{RESULTS}/{{dataset}}/{{scenario}}/population/ulira_roc.npz",
        vs_n=f"{RESULTS}/{{dataset}}/{{scenario}}/population/scores_by_n.csv",
        table=report(f"{RESULTS}/paper/table_forget_quality_{{dataset}}_{{scenario}}.tex",
                     caption="../report/table_forget_quality.rst", category="Forget quality", subcategory="Tables"),
        roc_pdf=f"{RESULTS}/paper/fig_ulira_roc_{{dataset}}_{{scenario}}.pdf",
        roc_png=report(f"{RESULTS}/paper/fig_ulira_roc_{{dataset}}_{{scenario}}.png",
                       caption="../report/fig_ulira_roc.rst", category="Forget quality", subcategory="Figures"),
        eps_pdf=f"{RESULTS}/paper/fig_forget_epsilon_{{dataset}}_{{scenario}}.pdf",
        eps_png=report(f"{RESULTS}/paper/fig_forget_epsilon_{{dataset}}_{{scenario}}.png",
                       caption="../report/fig_forget_epsilon.rst", category="Forget quality", subcategory="Figures"),
        n_pdf=f"{RESULTS}/paper/fig_forget_quality_vs_n_{{dataset}}_{{scenario}}.pdf",
        n_png=report(f"{RESULTS}/paper/fig_forget_quality_vs_n_{{dataset}}_{{scenario}}.png",
                     caption="../report/fig_forget_quality_vs_n.rst", category="Forget quality", subcategory="Figures"),
    wildcard_constraints:
        dataset="|".join(PLAN.datasets),
    params:
        dataset=lambda wc: wc.dataset,
        scenario=lambda wc: wc.scenario,
        label=lambda wc: PLAN.labels[wc.dataset],
        runs=population_runs,
        methods=lambda wc: {r: [PLAN.runs[r].setting, PLAN.runs[r].method] for r in population_runs(wc)},
        size=POP["size"] if POP else 0,
        protocol=POP["protocol"] if POP else "",
        variance=POP["variance"] if POP else "",
        retain_sample=POP["retain_sample"] if POP else 0,
        bootstrap=POP["bootstrap"] if POP else 0,
        data_seed=PLAN.data_seed,
        code=POP_CODE["forget_quality"],
    # rows and the N analysis in parallel processes (numbers independent of the count)
    threads: 2
    log:
        f"{RESULTS}/logs/report/forget_quality_{{dataset}}_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/forget_quality_{{dataset}}_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"
