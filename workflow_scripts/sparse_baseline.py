# Sparse baseline of the Sparsity setting: prune the dense baseline, retrain it with the mask fixed.
from unlearnbench.workflow import run_job

out = snakemake.output
run_job(snakemake.log[0], "unlearnbench.runner:train_sparse_baseline", snakemake.input.data, snakemake.input.dense,
        out.model, snakemake.params.training, float(snakemake.wildcards.sparsity), int(snakemake.params.epochs),
        int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads, snakemake.log[0],
        checkpoint=out.model + ".epoch")
