# Baseline (no request input) or retrain oracle (request input; then also evaluated as method "retrain").
from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.runner import evaluate_checkpoint, train_model

    request = snakemake.input.get("request")
    out = snakemake.output
    checkpoint = out.model + ".epoch"
    train_model(snakemake.input.data, request, out.model, snakemake.params.training, int(snakemake.wildcards.seed),
                snakemake.params.device, snakemake.threads, snakemake.log[0], checkpoint=checkpoint)
    if request is not None:
        evaluate_checkpoint(snakemake.input.data, request, out.model, int(snakemake.wildcards.seed),
                            snakemake.params.device, snakemake.threads, out.run, out.outputs, snakemake.log[0],
                            ut_from_training=True)
