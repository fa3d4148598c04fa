from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.report import write_statistics

    write_statistics(snakemake.input[0], snakemake.output.summary, snakemake.output.stats, snakemake.output.text)
