from unlearnbench.workflow import run_job

spec, out = snakemake.params.spec, snakemake.output
run_job(snakemake.log[0], "unlearnbench.runner:run_unlearning", snakemake.input.data, snakemake.input.request,
        snakemake.input.baseline, snakemake.wildcards.run, spec["method"], dict(spec["knobs"]),
        int(snakemake.wildcards.seed), snakemake.params.device, snakemake.threads, out.model, out.run, out.outputs,
        snakemake.log[0], fail=snakemake.params.fail, setting=spec["setting"],
        setting_knobs=dict(spec["setting_knobs"]))
