"""Nothing imports benchmarks/: the library, the models and the studies run without it."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("tensorgrad", "models", "experiments")


def imported_modules(source: str) -> set[str]:
    """The absolute module names a Python source imports (`import a.b`, `from a.b import c`,
    also inside functions), with `from a import b` giving both a and a.b."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_benchmarks(source: str) -> bool:
    return any(name == "benchmarks" or name.startswith("benchmarks.")
               for name in imported_modules(source))


@pytest.mark.parametrize("source, expected", [
    ("import benchmarks", True),
    ("import numpy as np, benchmarks.baselines as b", True),
    ("from benchmarks import benchmark", True),
    ("def f():\n    from benchmarks.baselines import NumpyMLP", True),
    ("import benchmarking", False),
    ("from tensorgrad import benchmarks", False),  # tensorgrad.benchmarks, not ours
    ("from . import baselines", False),
    ("x = 'benchmarks'", False),
])
def test_the_scan_finds_imports_of_benchmarks(source, expected):
    assert imports_benchmarks(source) is expected


def test_no_module_of_the_library_models_or_studies_imports_benchmarks():
    files = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50  # the scan sees the packages
    offenders = [str(path.relative_to(REPO)) for path in files
                 if imports_benchmarks(path.read_text())]
    assert offenders == []
