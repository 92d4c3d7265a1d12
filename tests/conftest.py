"""Shared test fixtures."""

import os

import jax
import pytest


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats (closed-form comparisons need the precision)."""
    with jax.enable_x64(True):
        yield


# Multi-device tests need XLA_FLAGS set before JAX starts: tests/test_multidevice.py runs them
# in their own process, so the main process does not collect them.
if os.environ.get("ENTROPIX_MULTIDEVICE") != "1":
    collect_ignore = ["multidevice"]

# The doctest collector (--doctest-modules) would import every conftest.py as a module named
# "conftest"; they hold no doctests, and two of them in package-less folders clash.
collect_ignore_glob = ["*/conftest.py"]
