"""The job entry points of the pipeline's rules (runtime.jobs.TARGETS): training jobs (training), unlearning and
evaluation jobs (unlearning), forget requests built from a trained model (requests)."""
