"""Benchmarks of the token store's hot path, run with ``python -m benchmarks.run``.

Side by side in one run: ``SQLAlchemyTokenStore``, the bare database driver,
and the Zoho SDK's own ``FileStore`` and ``DBStore``. See ``docs/benchmarks.md``.
"""
