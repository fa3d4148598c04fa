"""How jobs run: the rule -> function table (jobs), the workflow script's glue (workflow), the job server (jobserver),
jobs dying with their run (lifetime), the run lock (runlock). Imports no other layer (targets are named by string)."""
