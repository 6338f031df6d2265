"""Console fixtures (see tests/console_support.py)."""

from tests.console_support import desk  # noqa: F401 - a fixture
