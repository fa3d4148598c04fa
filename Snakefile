# unlearnbench: dataset → bias construction → forget requests → baseline → retrain oracles
# → unlearning + evaluation → aggregation + statistics → paper figures and tables.
# Rules say what depends on what; the package (src/unlearnbench) says how. The config is parsed once
# (unlearnbench.config.plan.parse: every run, scenario and knob validated before any job) into PLAN.
import os

from snakemake.utils import min_version

min_version("8.0")

# Before any job, every config problem is one paragraph naming its key (or file and line) and the fix
# (unlearnbench.config.validation): YAML errors, non-finite numbers, the JSON schema (whose defaults it fills in).
from unlearnbench.config import validation

# A --configfile replaces the embedded default (paper configs are complete); --config merges on top.
if not workflow.overwrite_configfiles:
    validation.check_files(["config.yaml"])
    configfile: "config.yaml"
else:
    validation.check_files(workflow.overwrite_configfiles)  # duplicated keys (Snakemake read the syntax)

validation.validate(config, os.path.join(workflow.basedir, "config", "schema.yaml"))

import re

from unlearnbench.config.plan import parse as parse_config
from unlearnbench.config.sweeps import RUN_NAME

PLAN = parse_config(config, root=workflow.basedir)

# After a crash, the same command runs again (unlearnbench.runtime.runlock): Snakemake's lock left by a killed run is
# removed once no process of that run is left (never a live run's lock); profiles/default sets rerun-incomplete.
from unlearnbench.runtime import lifetime, runlock

if workflow.is_main_process:
    runlock.start_run()

RESULTS = PLAN.results
SEEDS = PLAN.seeds

# Local runs fork every job from one process that has torch imported (unlearnbench.runtime.jobserver): a job's own
# work on the default is shorter than `import torch`. Not on SLURM, and not with --sdm conda (another Python).
JOB_SERVER = None


onstart:
    global JOB_SERVER
    runlock.started(local=workflow.local_exec)
    if workflow.local_exec:
        # every job stops once this snakemake process is gone, even after kill -9 (unlearnbench.runtime.lifetime)
        os.environ[lifetime.ENV_VAR] = lifetime.identity()
    if PLAN.job_server and workflow.local_exec:
        from unlearnbench.runtime import jobserver

        os.makedirs(f"{RESULTS}/logs", exist_ok=True)
        JOB_SERVER = jobserver.start(log_path=f"{RESULTS}/logs/job_server.log")
        os.environ[jobserver.ENV_VAR] = JOB_SERVER.address


onsuccess:
    runlock.finished()
    if JOB_SERVER is not None:
        JOB_SERVER.stop()


onerror:
    runlock.finished()
    if JOB_SERVER is not None:
        JOB_SERVER.stop()


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    scenario="|".join(PLAN.scenarios),
    run=RUN_NAME,
    seed=r"\d+",


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/unlearn.smk"
include: "rules/evaluate.smk"
include: "rules/bias_strength.smk"
include: "rules/report.smk"
include: "rules/xs.smk"
include: "rules/tune.smk"
include: "rules/jit.smk"
include: "rules/population.smk"


rule all:
    default_target: True
    input:
        rules.paper.input,
        XS_OUTPUTS,
        TUNING_ARTIFACTS,
        rules.jit_paper.input,
        POPULATION_OUTPUTS,
