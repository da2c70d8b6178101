"""The composition root: the CLI and ``shiptrack up``, the only package that imports the
services (``api``, ``ingest``, ``simulator``) and wires them together."""
