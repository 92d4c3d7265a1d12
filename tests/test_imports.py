"""The core package imports only jax, optax and numpy; every public name is exported."""

import subprocess
import sys

import entropix


def test_core_import_pulls_no_optional_dependency():
    code = (
        "import sys, entropix; "
        "heavy = [m for m in ('flax', 'tensorflow_datasets', 'matplotlib', 'ml_collections', "
        "'orbax', 'tqdm', 'mnist1d') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_lists_exactly_the_public_names():
    public = {n for n in vars(entropix) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(entropix, n)).__name__ == "module"}
    assert set(entropix.__all__) == public - modules
    # Functions and classes, and the one data object: the optimizer catalogue.
    data = {"OPTIMIZERS"}
    assert all(callable(getattr(entropix, n)) for n in set(entropix.__all__) - data)
    assert all(isinstance(entry, entropix.OptimizerEntry) for entry in entropix.OPTIMIZERS.values())
