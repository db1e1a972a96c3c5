"""Developer tooling, outside the runtime package: generated files (``python -m tools.registry --write``)."""
