# Aggregation, statistics and the paper's figures and tables: cheap, local rules (submit host on SLURM).
# Figures and tables are marked report(...): `snakemake --report report.html` collects them with captions.

localrules: aggregate, statistics, figures, tables, bias_strength_figure, paper


rule aggregate:
    input:
        runs=[f"{d}/run.json" for d in run_dirs()],
        outputs=[f"{d}/outputs.npz" for d in run_dirs()],
    output:
        csv=f"{RESULTS}/summary/runs.csv",
        parquet=f"{RESULTS}/summary/runs.parquet",
        traces=f"{RESULTS}/summary/traces.csv",
    params:
        code=CODE["report"],
    # the per-run attacks (scikit-learn) run in parallel: locally this job runs alone at the end
    threads: 4
    log:
        f"{RESULTS}/logs/report/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/aggregate.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule statistics:
    input:
        runs=rules.aggregate.output.csv,
    output:
        summary=f"{RESULTS}/summary/summary.csv",
        stats=f"{RESULTS}/summary/stats.csv",
        text=f"{RESULTS}/summary/summary.md",
    params:
        code=CODE["report"],
    log:
        f"{RESULTS}/logs/report/statistics.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/statistics.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule figures:
    input:
        runs=rules.aggregate.output.csv,
        summary=rules.statistics.output.summary,
        traces=rules.aggregate.output.traces,
    output:
        pdf=f"{RESULTS}/paper/fig_metrics.pdf",
        png=report(f"{RESULTS}/paper/fig_metrics.png", caption="../report/fig_metrics.rst", category="UIB",
                   subcategory="Figures"),
        trace_pdf=f"{RESULTS}/paper/fig_bias_trace.pdf",
        trace_png=report(f"{RESULTS}/paper/fig_bias_trace.png", caption="../report/fig_bias_trace.rst",
                         category="UIB", subcategory="Figures"),
    params:
        code=CODE["figures"],
    log:
        f"{RESULTS}/logs/report/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/figures.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule tables:
    input:
        summary=rules.statistics.output.summary,
        runs=rules.aggregate.output.csv,
    output:
        table=report(f"{RESULTS}/paper/table_uib.tex", caption="../report/table_uib.rst", category="UIB",
                     subcategory="Tables"),
    params:
        labels=PLAN.labels,
        scenarios=lambda wc: {name: scenario_label(name) for name in uib_scenarios()},
        seed_notes=lambda wc: PLAN.seed_notes(uib_scenarios()),
        code=CODE["tables"],
    log:
        f"{RESULTS}/logs/report/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/tables.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule paper:
    input:
        rules.figures.output,
        rules.tables.output,
        rules.statistics.output,
        rules.bias_strength_figure.output if bias_strength_sweep() else [],
