from unlearnbench.workflow import run_job

run_job(snakemake.log[0], "unlearnbench.data:prepare_request", snakemake.input[0], snakemake.wildcards.scenario,
        dict(snakemake.params.options), snakemake.params.data_seed, snakemake.output[0])
