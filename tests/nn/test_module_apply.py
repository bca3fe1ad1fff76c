"""Module.apply(fn): fn on every submodule, children first, then on self; returns self."""
import numpy as np

import tensorgrad as tg
from tensorgrad import nn


def test_apply_visits_children_then_self_and_returns_self():
    inner = nn.Sequential(nn.Linear(3, 3, seed=0), nn.ReLU())
    model = nn.Sequential(inner, nn.Linear(3, 2, seed=1))
    seen = []
    assert model.apply(seen.append) is model
    assert seen == [inner[0], inner[1], inner, model[1], model]


def test_apply_initialises_weights_as_in_torch():
    model = nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1))

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)
    model.apply(init)
    out = model(tg.ones(1, 4))
    np.testing.assert_allclose(out.data, [[3.0, 3.0]])
