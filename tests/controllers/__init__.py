"""Tests of controllers."""
