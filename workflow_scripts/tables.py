from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.tables import uib_table

    uib_table(snakemake.input.summary, snakemake.output.table, labels=snakemake.params.labels)
