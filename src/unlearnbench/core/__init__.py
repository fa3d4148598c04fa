"""Torch-free basics every layer uses: errors, knobs, the registries' discovery, atomic IO, seeds, code hashes,
lazy imports, job logs. Imports nothing else of the package."""
