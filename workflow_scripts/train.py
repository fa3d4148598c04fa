# Baseline (no request input) or retrain oracle (request input; then also evaluated as method "retrain").
from unlearnbench.workflow import run_job

request = snakemake.input.get("request")
out = snakemake.output
run_job(snakemake.log[0], "unlearnbench.runner:train_model", snakemake.input.data, request, out.model,
        snakemake.params.training, int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads,
        snakemake.log[0], checkpoint=out.model + ".epoch")
if request is not None:
    run_job(snakemake.log[0], "unlearnbench.runner:evaluate_checkpoint", snakemake.input.data, request, out.model,
            int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads, out.run, out.outputs,
            snakemake.log[0], ut_from_training=True)
