from unlearnbench.workflow import run_job

out = snakemake.output
run_job(snakemake.log[0], "unlearnbench.runner:evaluate_checkpoint", snakemake.input.data, snakemake.input.request,
        snakemake.input.model, int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads, out.run,
        out.outputs, snakemake.log[0], ut_from_training=False)
