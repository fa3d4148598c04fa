"""What is measured: the metrics of one unlearned model (metrics, evaluate), the statistical tests over seeds (stats),
the mutual-information estimator (mutual_info)."""
