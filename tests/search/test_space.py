"""Search spaces: grids, narrowing, JSON round trip, clear errors; no Optuna import needed."""
import json
import math
import subprocess
import sys

import pytest

from tensorgrad.search import (
    Choice,
    Int,
    LogUniform,
    Uniform,
    grid_points,
    grid_size,
    grid_values,
    load_space,
    narrow,
    space_from_dict,
    space_to_dict,
)


def test_log_grid_is_log_spaced_with_both_ends_like_r4():
    lam = LogUniform(1e-8, 1e-4, num=14).grid()
    assert len(lam) == 14 and lam[0] == pytest.approx(1e-8) and lam[-1] == pytest.approx(1e-4)
    ratios = [b / a for a, b in zip(lam, lam[1:])]
    assert ratios == pytest.approx([10 ** (4 / 13)] * 13)
    assert lam[1] == pytest.approx(2.03e-8, rel=1e-3)   # R4's best lambda is a grid point


def test_grid_of_a_mixed_space():
    space = {"eta": Uniform(0.0, 1.0, num=3), "depth": Int(3, 9, step=3),
             "opt": Choice(["sgd", "adagrad"])}
    assert grid_values(space) == {"eta": [0.0, 0.5, 1.0], "depth": [3, 6, 9],
                                  "opt": ["sgd", "adagrad"]}
    points = grid_points(space)
    assert grid_size(space) == len(points) == 18
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 18


def test_grid_needs_points_for_continuous_parameters():
    with pytest.raises(ValueError, match="'lam'.*num="):
        grid_values({"lam": LogUniform(1e-3, 1e-1)})


@pytest.mark.parametrize("make, message", [
    (lambda: LogUniform(0, 1), "0 < low <= high"),
    (lambda: LogUniform(1e-3, 1e-4), "0 < low <= high"),
    (lambda: LogUniform(1e-3, 1e-1, num=0), "num"),
    (lambda: Uniform(1, 0), "low <= high"),
    (lambda: Uniform(0, float("nan")), "finite"),
    (lambda: Int(1, 5, step=0), "step >= 1"),
    (lambda: Int(0, 5, log=True), "log=True"),
    (lambda: Int(1.5, 5), "integer"),
    (lambda: Choice([]), "at least one"),
    (lambda: Choice([1, 1]), "distinct"),
    (lambda: Choice([[1, 2]]), "str, int, float, bool or None"),
])
def test_bad_parameters_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_narrow_around_the_best():
    space = {"lam": LogUniform(1e-6, 1e-1, num=5), "p": Uniform(0.0, 1.0), "depth": Int(3, 9),
             "opt": Choice(["sgd", "adam"])}
    fine = narrow(space, {"lam": 1e-3, "p": 0.95, "depth": 9, "opt": "adam"}, factor=10)
    assert fine["lam"].low == pytest.approx(1e-3 / math.sqrt(10))
    assert fine["lam"].high == pytest.approx(1e-3 * math.sqrt(10)) and fine["lam"].num == 5
    assert (fine["p"].low, fine["p"].high) == pytest.approx((0.9, 1.0))   # clipped at the top
    assert (fine["depth"].low, fine["depth"].high) == (8, 9)
    assert fine["opt"] == Choice(["adam"])
    with pytest.raises(ValueError, match="best has no value for 'depth'"):
        narrow(space, {"lam": 1e-3, "p": 0.5, "opt": "sgd"})


def test_json_round_trip_and_spec_files(tmp_path):
    space = {"lam": LogUniform(1e-8, 1e-4, num=14), "depth": Int(3, 9),
             "bn": Choice([True, False]), "drop": Uniform(0.0, 0.5)}
    assert space_from_dict(json.loads(json.dumps(space_to_dict(space)))) == space
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lam": {"type": "loguniform", "low": 1e-3, "high": 1e-1}}))
    assert load_space(path) == {"lam": LogUniform(1e-3, 1e-1)}
    path.write_text("{not json")
    with pytest.raises(ValueError, match="space.json is not valid JSON"):
        load_space(path)
    path.write_text(json.dumps({"lam": {"type": "gaussian"}}))
    with pytest.raises(ValueError, match="'lam' needs \"type\""):
        load_space(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_space(tmp_path / "missing.json")


def test_importing_tensorgrad_and_the_search_api_does_not_import_optuna():
    code = ("import sys, tensorgrad, tensorgrad.search; "
            "assert 'optuna' not in sys.modules, 'optuna imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
