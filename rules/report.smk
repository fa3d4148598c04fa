# Aggregation, statistics and the paper's figures and tables: cheap, local rules (submit host on SLURM).

localrules: aggregate, statistics, figures, tables, paper


rule aggregate:
    input:
        runs=[f"{d}/run.json" for d in run_dirs()],
        outputs=[f"{d}/outputs.npz" for d in run_dirs()],
    output:
        csv=f"{RESULTS}/summary/runs.csv",
        parquet=f"{RESULTS}/summary/runs.parquet",
        traces=f"{RESULTS}/summary/traces.csv",
    params:
        settings={run: spec.get("setting", "standard") for run, spec in config["methods"].items()},
        methods={run: spec["method"] for run, spec in config["methods"].items()},
    # the per-run attacks (scikit-learn) run in parallel: locally this job runs alone at the end
    threads: 4
    log:
        f"{RESULTS}/logs/report/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/aggregate.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/aggregate.py"


rule statistics:
    input:
        rules.aggregate.output.csv,
    output:
        summary=f"{RESULTS}/summary/summary.csv",
        stats=f"{RESULTS}/summary/stats.csv",
        text=f"{RESULTS}/summary/summary.md",
    log:
        f"{RESULTS}/logs/report/statistics.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/statistics.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/statistics.py"


rule figures:
    input:
        runs=rules.aggregate.output.csv,
        summary=rules.statistics.output.summary,
        traces=rules.aggregate.output.traces,
    output:
        pdf=f"{RESULTS}/paper/fig_metrics.pdf",
        png=f"{RESULTS}/paper/fig_metrics.png",
        trace_pdf=f"{RESULTS}/paper/fig_bias_trace.pdf",
        trace_png=f"{RESULTS}/paper/fig_bias_trace.png",
    log:
        f"{RESULTS}/logs/report/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/figures.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/figures.py"


rule tables:
    input:
        summary=rules.statistics.output.summary,
    params:
        labels={name: ds.get("label", name) for name, ds in config["datasets"].items()},
    output:
        table=f"{RESULTS}/paper/table_uib.tex",
    log:
        f"{RESULTS}/logs/report/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/tables.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/tables.py"


rule paper:
    input:
        rules.figures.output,
        rules.tables.output,
        rules.statistics.output,
