from unlearnbench.workflow import run_job

run_job(snakemake.log[0], "unlearnbench.data:prepare_experiment", snakemake.input[0], snakemake.output[0],
        snakemake.params.dataset, snakemake.params.data_seed)
