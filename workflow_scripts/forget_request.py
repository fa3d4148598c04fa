from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.data import prepare_request

    prepare_request(snakemake.input[0], snakemake.wildcards.scenario, dict(snakemake.params.options),
                    snakemake.params.data_seed, snakemake.output[0])
