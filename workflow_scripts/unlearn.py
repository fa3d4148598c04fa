from unlearnbench.workflow import logged

with logged(snakemake.log[0]):
    from unlearnbench.runner import run_unlearning

    spec, out = snakemake.params.spec, snakemake.output
    run_unlearning(snakemake.input.data, snakemake.input.request, snakemake.input.baseline, snakemake.wildcards.run,
                   spec["method"], dict(spec["knobs"]), int(snakemake.wildcards.seed), snakemake.params.device,
                   snakemake.threads, out.model, out.run, out.outputs, snakemake.log[0],
                   fail=snakemake.params.fail, setting=spec["setting"], setting_knobs=dict(spec["setting_knobs"]))
