"""Fixtures of the landscape-diagnostics tests."""

import jax
import pytest


@pytest.fixture
def f64():
    """Runs a test with 64-bit floats (closed-form comparisons need the precision)."""
    with jax.enable_x64(True):
        yield
