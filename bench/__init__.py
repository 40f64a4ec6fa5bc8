"""Load benchmark of ``PATCH /api/sandboxes``; ``bench/run.py`` runs it."""
