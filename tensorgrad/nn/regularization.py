"""The course's L2 regularisation: cost = loss + lambda * sum of squared weight matrices.

Only weight matrices count: parameters named `weight` with 2 or more dimensions (every Linear's
W). Biases and batch-norm gamma/beta (1-D) are excluded.

Relation to an optimizer's weight_decay: d/dW lambda * ||W||^2 = 2 * lambda * W, so for plain
SGD, adding `lam * l2_penalty(model)` to the loss is the same update as SGD(weight_decay=2 * lam)
applied to the weight matrices only (`l2_param_groups(model, 2 * lam)` builds those groups).
The same holds for every optimizer whose weight_decay adds weight_decay * W to the gradient
(SGD with momentum, Adagrad, RMSprop, Adam); AdamW's decoupled decay is a different rule.
"""

from ..ops import sum_squares

__all__ = ["l2_weights", "l2_penalty", "l2_param_groups"]


def l2_weights(model):
    """(dotted name, parameter) of the weight matrices the L2 term covers."""
    return [(name, p) for name, p in model.named_parameters()
            if name.rsplit(".", 1)[-1] == "weight" and p.ndim >= 2]


def l2_penalty(model):
    """sum over the weight matrices W of sum(W ** 2), as a differentiable scalar Tensor.

    Use it as `loss = F.cross_entropy(scores, y) + lam * nn.l2_penalty(model)`.
    """
    weights = model.memo("l2_weights", l2_weights) if hasattr(model, "memo") else \
        l2_weights(model)
    if not weights:
        raise ValueError(f"l2_penalty: {type(model).__name__} has no weight matrix (no parameter "
                         f"named 'weight' with 2 or more dimensions)")
    return sum_squares(*[w for _, w in weights])  # one op: a BLAS dot per matrix


def l2_param_groups(model, weight_decay):
    """Two optimizer parameter groups: the weight matrices with `weight_decay`, every other
    parameter (biases, batch-norm gamma/beta) with weight_decay 0. For the course's L2 term with
    coefficient lam and plain SGD, pass weight_decay = 2 * lam."""
    weights = {id(p) for _, p in l2_weights(model)}
    params = list(model.parameters())
    return [{"params": [p for p in params if id(p) in weights], "weight_decay": weight_decay},
            {"params": [p for p in params if id(p) not in weights], "weight_decay": 0.0}]
