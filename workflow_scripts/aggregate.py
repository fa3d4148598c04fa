from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.report import aggregate

    aggregate(snakemake.input.runs, snakemake.params.settings, snakemake.params.methods, snakemake.output.csv,
              snakemake.output.parquet, snakemake.output.traces)
