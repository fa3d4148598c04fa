from unlearnbench.workflow import run_job

out = snakemake.output
run_job(snakemake.log[0], "unlearnbench.plots:metric_figure", snakemake.input.runs, snakemake.input.summary, out.pdf,
        out.png)
run_job(snakemake.log[0], "unlearnbench.plots:trace_figure", snakemake.input.traces, out.trace_pdf, out.trace_png)
