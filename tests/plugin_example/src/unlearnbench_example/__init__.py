"""An example plugin package for unlearnbench: its modules register methods through the `unlearnbench.methods`
entry-point group (pyproject.toml)."""
