from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.runner import evaluate_checkpoint

    out = snakemake.output
    evaluate_checkpoint(snakemake.input.data, snakemake.input.request, snakemake.input.model,
                        int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads, out.run,
                        out.outputs, snakemake.log[0], ut_from_training=False)
