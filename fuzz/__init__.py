"""Coverage-guided fuzz targets (atheris) for every decoder an attacker can reach.

``scripts/fuzz`` runs them; ``fuzz/README.md`` says how and what each one checks.
"""
