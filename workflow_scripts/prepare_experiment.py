from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.data import prepare_experiment

    prepare_experiment(snakemake.input[0], snakemake.output[0], snakemake.params.dataset, snakemake.params.data_seed)
