# The one workflow script: every rule runs its package target (unlearnbench.runtime.jobs.TARGETS) with the rule's named
# inputs, outputs and params as keyword arguments.
from unlearnbench.runtime.workflow import run_rule

run_rule(snakemake)
