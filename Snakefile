# unlearnbench: dataset → bias construction → forget requests → baseline → retrain oracles
# → unlearning + evaluation → aggregation + statistics → paper figures and tables.
# Rules say what depends on what; the package (src/unlearnbench) says how. The config is parsed once
# (unlearnbench.config.parse: every run, scenario and knob validated before any job) into PLAN.
from snakemake.utils import min_version, validate

min_version("8.0")

# A --configfile replaces the embedded default (paper configs are complete); --config merges on top.
if not workflow.overwrite_configfiles:
    configfile: "config.yaml"

validate(config, "config/schema.yaml")

from unlearnbench.config import parse as parse_config

PLAN = parse_config(config)

RESULTS = config["results"]
SEEDS = PLAN.seeds
REFERENCES = ["retrain"] + (["original"] if config["report_original"] else [])

# Local runs fork every job from one process that has torch imported (unlearnbench.jobserver): a job's own
# work on the default is shorter than `import torch`. Not on SLURM, and not with --sdm conda (another Python).
import os

JOB_SERVER = None


onstart:
    global JOB_SERVER
    if config["job_server"] and workflow.local_exec:
        from unlearnbench import jobserver

        os.makedirs(f"{RESULTS}/logs", exist_ok=True)
        JOB_SERVER = jobserver.start(log_path=f"{RESULTS}/logs/job_server.log")
        os.environ[jobserver.ENV_VAR] = JOB_SERVER.address


onsuccess:
    if JOB_SERVER is not None:
        JOB_SERVER.stop()


onerror:
    if JOB_SERVER is not None:
        JOB_SERVER.stop()


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    scenario="|".join(config["scenarios"]),
    run="[a-z][a-z0-9_]*",
    seed=r"\d+",


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/unlearn.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/jit.smk"


rule all:
    default_target: True
    input:
        rules.paper.input,
        rules.jit_paper.input,
