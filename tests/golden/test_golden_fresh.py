"""The committed golden .npz files are what make_golden.py produces now (skipped without torch)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
GOLDEN_FILES = [
    "optimizers.npz",
    "schedulers.npz",
    "clip_grad_norm.npz",
    "batchnorm1d.npz",
    "cross_entropy.npz",
    "softmax.npz",
    "losses.npz",
    "activations.npz",
    "layer_norm.npz",
    "functional.npz",
]


def load_generator():
    spec = importlib.util.spec_from_file_location("make_golden", HERE / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_golden_file_is_committed_and_records_its_torch_version():
    for name in GOLDEN_FILES:
        with np.load(HERE / name) as f:
            assert str(f["torch_version"]) and int(f["seed"]) > 0, name


def test_regenerated_goldens_equal_the_committed_ones(tmp_path):
    torch = pytest.importorskip("torch")
    written = load_generator().main(tmp_path)
    assert sorted(p.name for p in written) == sorted(GOLDEN_FILES)
    for name in GOLDEN_FILES:
        with np.load(HERE / name) as committed, np.load(tmp_path / name) as fresh:
            assert set(committed.files) == set(fresh.files), (
                f"{name}: keys differ; rerun make_golden.py"
            )
            same_torch = str(committed["torch_version"]) == torch.__version__
            for key in committed.files:
                if key == "torch_version":
                    continue
                old, new = committed[key], fresh[key]
                assert old.dtype == new.dtype and old.shape == new.shape, f"{name}[{key}]"
                if same_torch or not np.issubdtype(old.dtype, np.floating):
                    np.testing.assert_array_equal(new, old, err_msg=f"{name}[{key}]")
                else:  # another torch release may round differently in the last bits
                    np.testing.assert_allclose(
                        new, old, rtol=1e-10, atol=1e-12, err_msg=f"{name}[{key}]"
                    )
