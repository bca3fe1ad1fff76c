"""Optimizers and learning-rate schedules with PyTorch's names, options and update rules.

    from tensorgrad import optim
    opt = optim.SGD(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.CyclicLR(opt, base_lr=1e-5, max_lr=1e-1, step_size_up=800)
    swa_model = optim.swa_utils.AveragedModel(model)   # weight averaging (SWA, EMA)

Parameters are updated in place (``p.data``), in the parameter's own dtype; parameters
whose ``grad`` is None are skipped.

``weight_decay`` versus the course's L2 term: ``J = loss + lambda * sum ||W||^2`` has gradient
``dloss/dW + 2*lambda*W``, so ``weight_decay = 2*lambda`` gives the same update with SGD.
But ``weight_decay`` applies to every parameter in its group, biases and batch-norm
parameters included, while the course's L2 term excludes them: put those in a second group
with ``weight_decay=0`` (see ``tensorgrad.optim.optimizer``).  ``AdamW`` decays weights
directly instead of through the gradient.
"""

from . import lr_scheduler, swa_utils
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "lr_scheduler",
           "swa_utils"]
