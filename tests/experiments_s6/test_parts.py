"""Unit tests of the S6 helpers: total wall time, weight averaging, test-time flips, the best
MLP's flags."""
import json

import numpy as np
import pytest

from experiments import best_mlp, parallel
from models.mlp import MLP
from tensorgrad.data import Normalize


def test_total_wall_time_skips_quick_results(tmp_path):
    for name, quick, wall in (("a", False, 10.0), ("b", True, 99.0), ("c", False, 5.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(
            json.dumps({"quick": quick, "wall_time_s": wall}))
    total = parallel.total_wall_time(tmp_path)
    assert total == {"studies": {"a": 10.0, "c": 5.5}, "total_s": 15.5}


def test_weight_average_is_the_mean_of_the_last_epochs():
    model = MLP([12, 4, 3], seed=0)
    avg = best_mlp.WeightAverage(model, last=3, updates_per_epoch=5)
    snapshots = []
    for epoch in range(1, 5):
        for p in model.parameters():
            p.data += np.float32(epoch)
        avg(epoch * 5, {})
        snapshots.append([p.data.copy() for p in model.parameters()])
    avg(7, {})  # not an epoch end: ignored
    assert avg.count == 3
    target = MLP([12, 4, 3], seed=1)
    x = np.random.default_rng(0).standard_normal((64, 12)).astype(np.float32)
    avg.apply(target, x)
    for p, *snaps in zip(target.parameters(), *snapshots[1:]):
        np.testing.assert_allclose(p.data, np.mean(snaps, axis=0), rtol=1e-6)
    bn = target[1]
    h = x @ target[0].weight.data.T + target[0].bias.data
    np.testing.assert_allclose(bn.running_mean.data, h.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not target.training


def test_mirror_flips_images_in_pixel_space():
    rng = np.random.default_rng(0)
    pixels = rng.random((5, 3072)).astype(np.float32)
    norm = Normalize.fit(rng.random((50, 3072)).astype(np.float32))
    x = norm(pixels)
    flipped = best_mlp.mirror(x, norm)
    expected = norm(pixels.reshape(5, 3, 32, 32)[..., ::-1].reshape(5, -1))
    np.testing.assert_allclose(flipped, expected, atol=1e-4)
    np.testing.assert_allclose(best_mlp.mirror(flipped, norm), x, atol=1e-4)


def test_fast_translation_matches_random_translation():
    from tensorgrad.data import RandomTranslation
    x = np.random.default_rng(0).random((40, 3072)).astype(np.float32)
    slow, fast = RandomTranslation(3, seed=5), best_mlp.FastTranslation(3, seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(fast(x), slow(x))


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
