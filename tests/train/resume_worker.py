"""One training run for the kill / interrupt tests, meant to run as a subprocess.

    python -m tests.train.resume_worker DATA CHECKPOINT OPTIMIZER OUT   # CHECKPOINT may be none

Tiny CIFAR-10 files (split b), an MLP with batch norm and dropout, augmentation, a CyclicLR and
a checkpoint every 3 updates. A fault set by TENSORGRAD_FAULT (test-only) may kill or interrupt
it; run again with the same arguments it resumes from the checkpoint. TENSORGRAD_TEST_PREFETCH
(test-only) sets the loader's prefetch_factor (default 0). When training ends it
writes OUT.npz (model and optimizer state) and OUT.json (history and RNG states); when fit
raises KeyboardInterrupt it prints what the exception carries as one JSON line and exits 130.
"""
import json
import os
import sys

import numpy as np

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad.data import (
    Compose,
    DataLoader,
    GaussianNoise,
    RandomHorizontalFlip,
    RandomTranslation,
    load_cifar10,
)
from tensorgrad.optim import SGD, Adam
from tensorgrad.optim.lr_scheduler import CyclicLR
from tensorgrad.train import fit

OPTIMIZERS = {
    "momentum": lambda params: SGD(params, lr=0.05, momentum=0.9),
    "nesterov": lambda params: SGD(params, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda params: Adam(params, lr=0.01),
}
EPOCHS, BATCH, CHECKPOINT_EVERY, MEASURE_EVERY = 3, 10, 3, 4  # 8 updates per epoch


def _floats(x):
    x = np.asarray(x, dtype=np.float32)
    return x / 255 if x.max() > 1.5 else x  # the loader's pixels, in [0, 1] either way


def main(data, checkpoint, optimizer, out):
    splits = load_cifar10(data, split="b", n_val=20, download=False)
    (x, y), (xv, yv) = splits.train, splits.val
    x, xv = _floats(x), _floats(xv)
    model = MLP([3072, 24, 24, 10], batch_norm=True, dropout=0.2, seed=0)
    opt = OPTIMIZERS[optimizer](model.parameters())
    max_lr = opt.param_groups[0]["lr"]
    sched = CyclicLR(opt, base_lr=max_lr / 10, max_lr=max_lr, step_size_up=4)
    loader = DataLoader((x, y), batch_size=BATCH, seed=1,
                        prefetch_factor=int(os.environ.get("TENSORGRAD_TEST_PREFETCH", "0")))
    augment = Compose([RandomHorizontalFlip(0.5, seed=2), RandomTranslation(2, seed=3),
                       GaussianNoise(0.1, seed=4)])
    checkpoint = None if checkpoint == "none" else checkpoint
    try:
        history = fit(model, opt, loader, val_data=(xv, yv), epochs=EPOCHS, scheduler=sched,
                      augment=augment, l2=1e-3, measure_every=MEASURE_EVERY,
                      checkpoint=checkpoint, checkpoint_every=CHECKPOINT_EVERY, progress=False)
    except KeyboardInterrupt as exc:
        print(json.dumps({"interrupted": type(exc).__name__,
                          "checkpoint": getattr(exc, "checkpoint", None),
                          "step": getattr(exc, "step", None)}), flush=True)
        return 130
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            arrays[f"optimizer.{index}.{key}"] = np.asarray(value)
    tg.save(arrays, out + ".npz")
    h = history.to_dict()
    h.pop("wall_time")
    rngs = {"loader": loader.rng.bit_generator.state,
            "augment": [t.rng.bit_generator.state for t in augment.transforms]}
    with open(out + ".json", "w") as f:
        json.dump({"history": h, "rngs": rngs, "lr": opt.param_groups[0]["lr"]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
