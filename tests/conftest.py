"""Shared test fixtures."""

import os

import jax
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "mutation_smoke: planted one-point bugs of the inner step must fail closed forms "
        "(tests/test_mutation_smoke.py)",
    )


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats (closed-form comparisons need the precision).

    Request it as an argument, or for a whole module with
    ``pytestmark = pytest.mark.usefixtures("x64")``.
    """
    with jax.enable_x64(True):
        yield


# Multi-device tests need XLA_FLAGS set before JAX starts: tests/test_multidevice.py runs them
# in their own process, so the main process does not collect them.
if os.environ.get("ENTROPIX_MULTIDEVICE") != "1":
    collect_ignore = ["multidevice"]

# The doctest collector (--doctest-modules) would also collect conftest.py as a module; it holds
# no doctests.
collect_ignore_glob = ["*/conftest.py"]
