"""The sdist and wheel ship what a user needs: every module, py.typed, LICENSE, one version."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "runs",
    "_build",
    "_api",
    "_notebooks",
    ".pytest_cache",
    ".ruff_cache",
    "workdir*",
)


def source_version() -> str:
    """``__version__`` of ``entropix/__init__.py``, read without importing the package."""
    tree = ast.parse((ROOT / "entropix" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("entropix/__init__.py assigns no literal __version__")


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Builds the sdist, then the wheel from the sdist, from a copy of the source tree."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = tmp / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        "building failed; the test extra provides `build` and `setuptools>=77` "
        "(pip install -e '.[test]'):\n" + result.stdout[-3000:] + result.stderr[-3000:]
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def wheel_names(dists) -> set[str]:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        return set(wheel.namelist())


def test_wheel_name_and_metadata_carry_the_source_version(dists):
    version = source_version()
    assert dists["wheel"].name == f"entropix_jax-{version}-py3-none-any.whl"
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        metadata = wheel.read(f"entropix_jax-{version}.dist-info/METADATA").decode()
    fields = [line.split(": ", 1) for line in metadata.splitlines() if ": " in line]
    assert ["Name", "entropix-jax"] in fields
    assert ["Version", version] in fields
    assert ["License-Expression", "Apache-2.0"] in fields
    assert ["Classifier", "Typing :: Typed"] in fields


def test_wheel_ships_every_module_and_py_typed(dists):
    names = wheel_names(dists)
    modules = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "entropix").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert len(modules) > 50
    assert sorted(modules - names) == []
    assert "entropix/py.typed" in names


def test_wheel_and_sdist_ship_the_license(dists):
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "END OF TERMS AND CONDITIONS" in license_text
    version = source_version()
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        assert wheel.read(f"entropix_jax-{version}.dist-info/licenses/LICENSE").decode() == (
            license_text
        )
    with tarfile.open(dists["sdist"]) as sdist:
        member = sdist.extractfile(f"entropix_jax-{version}/LICENSE")
        assert member.read().decode() == license_text


def test_wheel_ships_configs(dists):
    # The experiment configs ship inside the package as ``entropix.configs``.
    assert "entropix/configs/mnist1d_compare.py" in wheel_names(dists)
