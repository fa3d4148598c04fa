import os

from unlearnbench.workflow import run_job

run_job(snakemake.log[0], "unlearnbench.datasets:prepare_dataset", snakemake.wildcards.source,
        os.path.dirname(snakemake.output[0]), download_dir=snakemake.params.download_dir,
        mirror=snakemake.params.mirror)
