"""Unit tests of the later studies' helpers: the studies' total wall time and the best MLP's
flags (its schedule, time budget, weight averaging and flips are experiments.spec's and the
library's)."""
import json

import pytest

from experiments import best_mlp, parallel


def test_total_wall_time_skips_quick_results(tmp_path):
    for name, quick, wall in (("a", False, 10.0), ("b", True, 99.0), ("c", False, 5.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(
            json.dumps({"quick": quick, "wall_time_s": wall}))
    total = parallel.total_wall_time(tmp_path)
    assert total == {"studies": {"a": 10.0, "c": 5.5}, "total_s": 15.5}


def test_best_mlp_flags_make_one_spec_per_seed():
    args = best_mlp.build_parser().parse_args(["--seeds", "2", "--seed", "3", "--lr", "0.05",
                                               "--hidden", "64", "--quick"])
    specs = best_mlp.specs_from(args)
    assert [s.seed for s in specs] == [3, 4] and specs[0].eta_max == 0.05
    assert specs[0].hidden() == [32, 16] and specs[0].epochs == 3   # --quick's tiny network
    full = best_mlp.specs_from(best_mlp.build_parser().parse_args(["--optimizer", "adamw"]))[0]
    assert (full.optimizer, full.momentum, full.nesterov, full.lam) == ("adamw", 0.0, False, 0.0)
    assert full.hidden() == [1024, 512, 256] and full.drop_last and full.tta
    with pytest.raises(SystemExit):
        best_mlp.main(["--schedule", "cosine", "--no-fit-budget", "--time-limit", "-1"])
