from unlearnbench.workflow import run_job

run_job(snakemake.log[0], "unlearnbench.tables:uib_table", snakemake.input.summary, snakemake.output.table,
        labels=snakemake.params.labels)
