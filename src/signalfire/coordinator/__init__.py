"""The coordinator: ingest batches from gateways, verify, deduplicate and store reports.

Modules: ``store`` (SQLAlchemy Core, SQLite or PostgreSQL), ``ingest`` (the
verify/decrypt/dedupe core, transport-neutral), ``app`` (the HTTPS batch
endpoint), ``config`` (coordinator.toml) and ``cli`` (``signalfire coordinator``).
"""
