from unlearnbench.workflow import run_job

run_job(snakemake.log[0], "unlearnbench.report:aggregate", snakemake.input.runs, snakemake.params.settings,
        snakemake.params.methods, snakemake.output.csv, snakemake.output.parquet, snakemake.output.traces,
        workers=snakemake.threads)
