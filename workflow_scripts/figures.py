from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.plots import metric_figure, trace_figure

    out = snakemake.output
    metric_figure(snakemake.input.runs, snakemake.input.summary, out.pdf, out.png)
    trace_figure(snakemake.input.traces, out.trace_pdf, out.trace_png)
