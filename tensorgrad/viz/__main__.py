"""`python -m tensorgrad.viz OUT.png` (or OUT.svg): draw the loss graph of a small MLP, the
README's picture. A 2-layer MLP with batch norm (one fused chain, drawn as a cluster) and
cross-entropy on a random batch, its parameters named. It writes only OUT."""
import argparse
from collections import OrderedDict

import numpy as np

from .. import manual_seed, nn, randn
from ..nn import functional as F
from . import draw


def example():
    """(the model, a random batch, its loss): Linear -> BatchNorm1d -> ReLU -> Linear."""
    manual_seed(0)
    model = nn.Sequential(OrderedDict([("fc1", nn.Linear(20, 16)), ("bn1", nn.BatchNorm1d(16)),
                                       ("relu", nn.ReLU()), ("fc2", nn.Linear(16, 4))]))
    x = randn(8, 20)
    labels = np.arange(8) % 4
    return model, x, F.cross_entropy(model(x), labels)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tensorgrad.viz", description=__doc__)
    parser.add_argument("out", help="the picture to write: a .png or .svg path")
    out = parser.parse_args(argv).out
    model, x, loss = example()
    draw(loss, out, params={"input": x, **dict(model.named_parameters())})
    print(out)


if __name__ == "__main__":
    main()
