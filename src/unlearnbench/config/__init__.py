"""The run configuration: schema validation (validation), the parse into a Plan of RunSpecs (plan), sweeps and tune
searches (sweeps), the artifacts a configuration asks for (jit). Torch-free: the Snakefile process imports it."""
