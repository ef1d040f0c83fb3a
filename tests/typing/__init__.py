"""User-style scripts checked by ``mypy --strict`` and ``pyright --strict`` (and run by the suite)."""
