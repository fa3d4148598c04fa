# Xu & Strohmer, "Machine Unlearning via Information Theoretic Regularization": feature unlearning by W2
# barycenters on tabular data (Fig. 1, table), output densities (Fig. 2), marginal unlearning trajectories (Fig. 3)
# and barycenter images (Fig. 4 analogue). Runs when the config has an `xs:` block (schema: config/schema.yaml);
# the rules always exist (their parameters are read only when a job is asked for).

XS = PLAN.xs
XS_CODE = {
    "source": code_hash("unlearnbench.datasets.tabular"),
    "tabular": code_hash("unlearnbench.artifacts.xs.tabular", "unlearnbench.datasets.tabular"),
    "images": code_hash("unlearnbench.artifacts.xs.images", "unlearnbench.methods.marginal_mi"),
    "plots": code_hash("unlearnbench.artifacts.xs.plots"),
}


localrules: xs_tabular_source, xs_frontier_figure, xs_frontier_table, xs_trajectory_figure, xs_density_figure,
    xs_barycenter_figure, xs_all


rule xs_tabular_source:
    output:
        table=f"{RESULTS}/xs/sources/{{tsource}}.csv",
        manifest=f"{RESULTS}/xs/sources/{{tsource}}.json",
    wildcard_constraints:
        tsource="german_credit|adult",
    params:
        source=lambda wc: wc.tsource,
        mirror=PLAN.mirror,
        download_dir=PLAN.download_dir,
        code=XS_CODE["source"],
    log:
        f"{RESULTS}/logs/xs/source_{{tsource}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/source_{{tsource}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_tabular:
    input:
        table=lambda wc: f"{RESULTS}/xs/sources/{xs_tabular_source(wc)}.csv",
    output:
        frontier_csv=f"{RESULTS}/xs/tabular/{{tabular}}/fold{{fold}}.csv",
    wildcard_constraints:
        fold=r"\d+",
    params:
        dataset=lambda wc: wc.tabular,
        source=xs_tabular_source,
        fold=lambda wc: int(wc.fold),
        settings=xs_tabular_settings,
        code=XS_CODE["tabular"],
    threads: 1
    log:
        f"{RESULTS}/logs/xs/tabular_{{tabular}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/tabular_{{tabular}}_fold{{fold}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_trajectories:
    input:
        source=xs_image_source("trajectories"),
    output:
        trajectories_csv=f"{RESULTS}/xs/trajectories.csv",
        references=f"{RESULTS}/xs/trajectories.json",
    params:
        settings=xs_settings("trajectories"),
        device=PLAN.device,
        code=XS_CODE["images"],
    threads: 1
    log:
        f"{RESULTS}/logs/xs/trajectories.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/trajectories.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_densities:
    output:
        densities_npz=f"{RESULTS}/xs/densities.npz",
    params:
        settings=xs_settings("densities"),
        code=XS_CODE["images"],
    threads: 1
    log:
        f"{RESULTS}/logs/xs/densities.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/densities.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_barycenter:
    input:
        source=xs_image_source("barycenter"),
    output:
        images_npz=f"{RESULTS}/xs/barycenter.npz",
    params:
        settings=xs_settings("barycenter"),
        mirror=PLAN.mirror,
        download_dir=PLAN.download_dir,
        code=XS_CODE["images"],
    threads: 1
    log:
        f"{RESULTS}/logs/xs/barycenter.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/barycenter.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_frontier_figure:
    input:
        frontiers=lambda wc: xs_fold_outputs(),
    output:
        pdf=f"{RESULTS}/paper/fig_xs_frontier.pdf",
        png=report(f"{RESULTS}/paper/fig_xs_frontier.png", caption="../report/fig_xs_frontier.rst",
                   category="Xu & Strohmer", subcategory="Figures"),
    params:
        labels=lambda wc: xs_tabular_labels(),
        code=XS_CODE["plots"],
    log:
        f"{RESULTS}/logs/xs/frontier_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/frontier_figure.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_frontier_table:
    input:
        frontiers=lambda wc: xs_fold_outputs(),
    output:
        table=report(f"{RESULTS}/paper/table_xs_frontier.tex", caption="../report/table_xs_frontier.rst",
                     category="Xu & Strohmer", subcategory="Tables"),
    params:
        labels=lambda wc: xs_tabular_labels(),
        budgets=lambda wc: XS["tabular"]["budgets"],
        code=XS_CODE["plots"],
    log:
        f"{RESULTS}/logs/xs/frontier_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/frontier_table.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_trajectory_figure:
    input:
        trajectories_csv=rules.xs_trajectories.output.trajectories_csv,
        references=rules.xs_trajectories.output.references,
    output:
        pdf=f"{RESULTS}/paper/fig_xs_mnist_trajectories.pdf",
        png=report(f"{RESULTS}/paper/fig_xs_mnist_trajectories.png",
                   caption="../report/fig_xs_mnist_trajectories.rst", category="Xu & Strohmer",
                   subcategory="Figures"),
    params:
        code=XS_CODE["plots"],
    log:
        f"{RESULTS}/logs/xs/trajectory_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/trajectory_figure.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_density_figure:
    input:
        densities_npz=rules.xs_densities.output.densities_npz,
    output:
        pdf=f"{RESULTS}/paper/fig_xs_densities.pdf",
        png=report(f"{RESULTS}/paper/fig_xs_densities.png", caption="../report/fig_xs_densities.rst",
                   category="Xu & Strohmer", subcategory="Figures"),
    params:
        code=XS_CODE["plots"],
    log:
        f"{RESULTS}/logs/xs/density_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/density_figure.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


rule xs_barycenter_figure:
    input:
        images_npz=rules.xs_barycenter.output.images_npz,
    output:
        pdf=f"{RESULTS}/paper/fig_xs_barycenter.pdf",
        png=report(f"{RESULTS}/paper/fig_xs_barycenter.png", caption="../report/fig_xs_barycenter.rst",
                   category="Xu & Strohmer", subcategory="Figures"),
    params:
        code=XS_CODE["plots"],
    log:
        f"{RESULTS}/logs/xs/barycenter_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/xs/barycenter_figure.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"


# every Xu & Strohmer artifact (none without an `xs:` block); rule all asks for them, `snakemake xs_all` for them alone
# (a part set to null, e.g. `xs: {tabular: null, ...}`, does not run)
XS_PARTS = {
    "tabular": [*rules.xs_frontier_figure.output, *rules.xs_frontier_table.output],
    "trajectories": [*rules.xs_trajectory_figure.output],
    "densities": [*rules.xs_density_figure.output],
    "barycenter": [*rules.xs_barycenter_figure.output],
}
XS_OUTPUTS = [path for part, outputs in XS_PARTS.items() if XS and XS.get(part) is not None for path in outputs]


rule xs_all:
    input:
        XS_OUTPUTS,
