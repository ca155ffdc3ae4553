"""Load the package's own pytest plugin (the ``wink_emulator`` fixtures) after coverage has started,
the real-Redis fixtures of ``tests/redis_fixtures.py`` and the per-test timeout of
``tests/timeouts.py``.

pyproject's ``addopts`` blocks the ``pytest11`` entry point with ``-p no:wink_middleware``; the entry
point itself is tested in ``test_emulator.py``, in a pytest run outside this project.
"""

pytest_plugins = ["wink_middleware.testing.pytest_plugin", "tests.redis_fixtures", "tests.timeouts"]
