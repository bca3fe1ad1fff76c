"""Weight averaging with the names and semantics of torch.optim.swa_utils.

    swa_model = AveragedModel(model)
    for epoch in range(epochs):
        train_one_epoch(model, optimizer)
        if epoch >= swa_start:
            swa_model.update_parameters(model)
    update_bn(train_loader, swa_model)   # batch-norm statistics of the averaged weights
    evaluate(swa_model, x_test, y_test)

`AveragedModel` keeps a copy of a model whose parameters are the equally weighted average of
every model passed to `update_parameters` (SWA), or any other running average through
`avg_fn` (`get_ema_avg_fn` for an exponential one). Averaged weights never met the data as a
set, so their batch-norm statistics are recomputed with `update_bn`.

Differences from PyTorch: no `device` (tensorgrad has none) and no `multi_avg_fn` (the
per-parameter `avg_fn` computes the same averages); `avg_fn` receives the number of models
averaged so far as a Python int, not a tensor; `avg_fn` and `use_buffers` are keyword-only; with
`use_buffers=True` integer buffers (batch norm's `num_batches_tracked`) are copied from the
model, not averaged; and `update_bn` refuses a loader that yields no batch instead of leaving
the statistics reset.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import numpy as np

from ..autograd import Tensor, as_tensor, no_grad
from ..nn.layers import BatchNorm1d
from ..nn.module import Module

__all__ = ["AveragedModel", "update_bn", "get_ema_avg_fn", "get_swa_avg_fn"]

AvgFn = Callable[[Tensor, Tensor, int], "Tensor | np.ndarray"]


def get_swa_avg_fn() -> AvgFn:
    """The equal-weight running mean: avg + (current - avg) / (num_averaged + 1)."""
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """The exponential moving average: decay * avg + (1 - decay) * current."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"get_ema_avg_fn: decay must be in [0, 1], got {decay!r}")

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


class AveragedModel(Module):
    """A deep copy of `model` (as `.module`) whose parameters hold a running average of the
    models given to `update_parameters`; calling it calls the copy. `n_averaged` (an int64
    buffer, saved in the state dict) counts them. The first update copies the model; later ones
    apply `avg_fn(averaged, current, n_averaged)` to each parameter (default: the equal-weight
    mean, in the parameter's dtype). With `use_buffers` the floating buffers are averaged too;
    without, every buffer is copied from the model at each update."""

    def __init__(self, model: Module, *, avg_fn: AvgFn | None = None, use_buffers: bool = False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: model must be a tensorgrad nn.Module, got "
                            f"{type(model).__name__}")
        if avg_fn is not None and not callable(avg_fn):
            raise TypeError(f"AveragedModel: avg_fn must be callable or None, got "
                            f"{type(avg_fn).__name__}")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", np.array(0, dtype=np.int64))
        self.avg_fn = avg_fn
        self.use_buffers = bool(use_buffers)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _matched(self, model: Module, kinds: tuple[str, ...]) -> list[tuple[Tensor, Tensor]]:
        """(ours, theirs) for every tensor of the given kinds ('parameters', 'buffers'), checked
        to correspond one to one."""
        def named(m):
            out = list(m.named_parameters()) if "parameters" in kinds else []
            if "buffers" in kinds:
                out += [(name, b) for name, b in m.named_buffers() if b is not None]
            return out
        ours, theirs = named(self.module), named(model)
        what = " and ".join(kinds)
        if len(ours) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} "
                             f"{what}, the averaged model {len(ours)}")
        for (name, a), (_, b) in zip(ours, theirs):
            if a.data.shape != b.data.shape:
                raise ValueError(f"AveragedModel.update_parameters: '{name}' has shape "
                                 f"{b.data.shape} in the model, {a.data.shape} in the averaged "
                                 f"model")
        return [(a, b) for (_, a), (_, b) in zip(ours, theirs)]

    def update_parameters(self, model: Module) -> None:
        """Average `model`'s current parameters (and buffers, with use_buffers) into ours."""
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel.update_parameters: model must be a tensorgrad "
                            f"nn.Module, got {type(model).__name__}")
        if self.use_buffers:
            averaged, copied = self._matched(model, ("parameters", "buffers")), []
        else:
            averaged = self._matched(model, ("parameters",))
            copied = self._matched(model, ("buffers",))
        n = int(self.n_averaged.data)
        with no_grad():
            for ours, theirs in averaged:
                if n == 0 or ours.data.dtype.kind != "f":
                    np.copyto(ours.data, theirs.data, casting="same_kind")
                elif self.avg_fn is None:
                    step = np.subtract(theirs.data, ours.data, dtype=ours.data.dtype)
                    step /= n + 1
                    ours.data += step
                else:
                    new = self.avg_fn(ours.detach(), theirs.detach(), n)
                    new = new.data if isinstance(new, Tensor) else np.asarray(new)
                    if new.shape != ours.data.shape:
                        raise ValueError(f"AveragedModel.update_parameters: avg_fn returned "
                                         f"shape {new.shape} for a parameter of shape "
                                         f"{ours.data.shape}")
                    np.copyto(ours.data, new, casting="same_kind")
            for ours, theirs in copied:
                np.copyto(ours.data, theirs.data, casting="same_kind")
        self.n_averaged.data += 1


def update_bn(loader: Iterable, model: Module) -> None:
    """Recompute the running statistics of every BatchNorm1d in `model` as the plain average
    over one pass of `loader`, in training mode (dropout active, as in PyTorch) and without a
    graph. A batch is an array or Tensor, or a tuple or list whose first element is the input.
    The layers' momenta and the model's train/eval mode are restored afterwards."""
    if not isinstance(model, Module):
        raise TypeError(f"update_bn: model must be a tensorgrad nn.Module, got "
                        f"{type(model).__name__}")
    norms = [m for m in model.modules() if isinstance(m, BatchNorm1d)]
    if not norms:
        return
    batches = iter(loader)
    first = next(batches, None)
    if first is None:
        raise ValueError("update_bn: the loader yielded no batch, so there is nothing to "
                         "compute the batch-norm statistics from")
    momenta = [m.momentum for m in norms]
    was_training = model.training
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch weighs the same
        model.train()
        with no_grad():
            for batch in _chain(first, batches):
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x if isinstance(x, Tensor) else as_tensor(x))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)


def _chain(first, rest):
    yield first
    yield from rest
