# Sparse baseline of the Sparsity setting: prune the dense baseline, retrain it with the mask fixed.
from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.runner import train_sparse_baseline

    out = snakemake.output
    train_sparse_baseline(snakemake.input.data, snakemake.input.dense, out.model, snakemake.params.training,
                          float(snakemake.wildcards.sparsity), int(snakemake.params.epochs),
                          int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads,
                          snakemake.log[0], checkpoint=out.model + ".epoch")
