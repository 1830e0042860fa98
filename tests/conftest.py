"""Loads each backend's conformance plugin (tests/backends/*.py)."""

from tests.backends import modules

pytest_plugins = modules()
