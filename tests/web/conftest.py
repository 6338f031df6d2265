"""Fixtures for the web door: a served deployment per test."""

from tests.web.door import door

__all__ = ["door"]
