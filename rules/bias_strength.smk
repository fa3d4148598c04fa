# fig_bias_strength: test F1 and Cramér's V of the baseline, the oracles and every method against the colour bias
# strength s (colour.bias_strength), from summary.csv. Made when the configuration runs the bias scenario on
# datasets that differ only in s (e.g. config/uib_bias_strength.yaml); part of `paper` then.


rule bias_strength_figure:
    input:
        summary=f"{RESULTS}/summary/summary.csv",  # rule statistics (rules/report.smk, included after this file)
    output:
        pdf=f"{RESULTS}/paper/fig_bias_strength.pdf",
        png=report(f"{RESULTS}/paper/fig_bias_strength.png", caption="../report/fig_bias_strength.rst",
                   category="UIB", subcategory="Figures"),
    params:
        strengths=bias_strength_groups(),
        code=CODE["figures"],
    log:
        f"{RESULTS}/logs/report/bias_strength_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/bias_strength_figure.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"
