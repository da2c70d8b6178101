"""shiptrack: real-time shipment telemetry.

The shared domain package: settings, payload decoding, topics, schema and the CLI.
The services live in the top-level packages ``ingest``, ``api`` and ``simulator``.
"""

__version__ = "0.1.0"
