from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from pathlib import Path
    from unlearnbench.datasets import prepare_dataset

    prepare_dataset(snakemake.wildcards.source, Path(snakemake.output[0]).parent,
                    download_dir=snakemake.params.download_dir, mirror=snakemake.params.mirror)
