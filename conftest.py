# The whole harness lives in tfkata/plugin.py; this file only switches it on for this repository.
pytest_plugins = ["tfkata.plugin", "pytester"]
