# JiT's artifacts (Foster et al., TMLR 2025), made when the config has `artifacts.jit` (PLAN.jit: unlearnbench.config.jit):
# a table per scenario (Tables 2-6 layout), per-class breakdowns (Tables 7-11) where a dataset runs several
# scenarios of one type, the forget-set entropy figure (Fig. 4), the runtime figure (Fig. 5) and the 2-D toy
# (Fig. 2). Cheap, local rules reading the aggregated results (the toy trains its own tiny models).

from unlearnbench.artifacts.jit.report import zero_shot_map

JIT = PLAN.jit
JIT_LABELS = PLAN.labels
JIT_CODE = {
    "report": code_hash("unlearnbench.artifacts.jit.report"),
    "toy": code_hash("unlearnbench.artifacts.jit.toy", "unlearnbench.methods.jit"),
}


localrules: jit_table, jit_breakdown, jit_entropy_figure, jit_runtime_figure, jit_toy_figure, jit_paper


rule jit_table:
    input:
        summary=f"{RESULTS}/summary/summary.csv",
        runs=f"{RESULTS}/summary/runs.csv",
        definitions=lambda wc: [f"{RESULTS}/{d}/requests/{s}.json" for d, s in PLAN.experiments if s == wc.scenario],
    output:
        table=report(f"{RESULTS}/paper/table_jit_{{scenario}}.tex", caption="../report/table_jit.rst",
                     category="JiT", subcategory="Tables"),
    params:
        scenario=lambda wc: wc.scenario,
        evaluation=lambda wc: JIT["evaluation"][wc.scenario],
        labels=JIT_LABELS,
        zero_shot=zero_shot_map(PLAN),
        seed_notes=lambda wc: PLAN.seed_notes([wc.scenario]),
        code=JIT_CODE["report"],
    log:
        f"{RESULTS}/logs/report/jit_table_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/jit_table_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule jit_breakdown:
    input:
        summary=f"{RESULTS}/summary/summary.csv",
        definitions=lambda wc: [f"{RESULTS}/{wc.dataset}/requests/{s}.json" for s in jit_breakdown_group(wc)],
    output:
        table=report(f"{RESULTS}/paper/table_jit_breakdown_{{dataset}}_{{kind}}.tex",
                     caption="../report/table_jit_breakdown.rst", category="JiT", subcategory="Tables"),
    wildcard_constraints:
        dataset="|".join(PLAN.datasets),
        kind="|".join(SCENARIO_TYPES),
    params:
        dataset=lambda wc: wc.dataset,
        label=lambda wc: JIT_LABELS[wc.dataset],
        scenarios=jit_breakdown_group,
        evaluation=lambda wc: {s: JIT["evaluation"][s] for s in jit_breakdown_group(wc)},
        zero_shot=zero_shot_map(PLAN),
        code=JIT_CODE["report"],
    log:
        f"{RESULTS}/logs/report/jit_breakdown_{{dataset}}_{{kind}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/jit_breakdown_{{dataset}}_{{kind}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule jit_entropy_figure:
    input:
        runs=lambda wc: jit_scenario_runs(wc)["runs"],
        outputs=lambda wc: jit_scenario_runs(wc)["outputs"],
    output:
        pdf=f"{RESULTS}/paper/fig_jit_entropy_{{scenario}}.pdf",
        png=report(f"{RESULTS}/paper/fig_jit_entropy_{{scenario}}.png", caption="../report/fig_jit_entropy.rst",
                   category="JiT", subcategory="Figures"),
        tests=f"{RESULTS}/paper/fig_jit_entropy_{{scenario}}.csv",
    params:
        scenario=lambda wc: wc.scenario,
        labels=JIT_LABELS,
        code=JIT_CODE["report"],
    log:
        f"{RESULTS}/logs/report/jit_entropy_{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/jit_entropy_{{scenario}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule jit_runtime_figure:
    input:
        runs=f"{RESULTS}/summary/runs.csv",
    output:
        pdf=f"{RESULTS}/paper/fig_jit_runtime.pdf",
        png=report(f"{RESULTS}/paper/fig_jit_runtime.png", caption="../report/fig_jit_runtime.rst", category="JiT",
                   subcategory="Figures"),
    params:
        scenarios=JIT["scenarios"] if JIT else [],
        labels=JIT_LABELS,
        code=JIT_CODE["report"],
    log:
        f"{RESULTS}/logs/report/jit_runtime.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/jit_runtime.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule jit_toy_figure:
    output:
        pdf=f"{RESULTS}/paper/fig_jit_toy.pdf",
        png=report(f"{RESULTS}/paper/fig_jit_toy.png", caption="../report/fig_jit_toy.rst", category="JiT",
                   subcategory="Figures"),
    params:
        code=JIT_CODE["toy"],
    threads: 1
    log:
        f"{RESULTS}/logs/report/jit_toy.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/jit_toy.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule jit_paper:
    input:
        jit_outputs(),
