from unlearnbench.workflow import run_job

run_job(snakemake.log[0], "unlearnbench.report:write_statistics", snakemake.input[0], snakemake.output.summary,
        snakemake.output.stats, snakemake.output.text)
