"""Cuponera test suite."""
