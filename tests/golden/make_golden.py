"""Write PyTorch reference values ("goldens") as small .npz files next to this script.

Run ``python tests/golden/make_golden.py [out_dir]`` (needs torch; tensorgrad never does).
Inputs come from ``numpy.random.default_rng(SEED)`` (a fresh generator per file) and are
saved in the files too, so the output is deterministic; ``tests/golden/test_golden_fresh.py``
regenerates and compares.  All arrays are float64 unless noted.  Every file also holds
``torch_version`` (str) and ``seed`` (int).

optimizers.npz -- parameters after each of 5 steps, for each optimizer and option set
    cases       JSON str: {case: {"optimizer": "SGD"|"Adagrad"|"RMSprop"|"Adam"|"AdamW",
                "kwargs": {...}, "groups": [{...}, {...}] (optional: per-group options for
                [p0] and [p1]; without it one group holds [p0, p1]), "dtype": "float64"|"float32"}}
    p0_init (3,), p1_init (2, 2)    initial parameters
    g0 (5, 3), g1 (5, 2, 2)         gradient of p0 / p1 at each step
    p1_grad_missing (5,) bool       steps where p1.grad is None (p1 must be skipped)
    {case}__p0 (6, 3), {case}__p1 (6, 2, 2)   row 0 = initial, row k = after k steps
                                              (float32 for float32 cases)

schedulers.npz -- learning rates per scheduler step
    cases       JSON str: {case: {"scheduler": name in torch.optim.lr_scheduler, "kwargs": {...},
                "optimizer": "SGD"|"Adam", "optimizer_kwargs": {...}, "group_lrs": [lr per group],
                "steps": n}}  (one parameter per group); SequentialLR cases also have
                "schedulers": [{"scheduler": name, "kwargs": {...}}, ...] (built in that order on
                the same optimizer), ReduceLROnPlateau cases "metrics": "loss"|"accuracy" (step k
                is step(metrics[k])), fractional-epoch cases "epochs_per_unit": u (step k is
                step((k + 1) / u))
    {case}__lr (n+1, groups)        row 0 = after construction, row k = after k step() calls
    {case}__momentum (n+1, groups)  only for cycle_momentum cases: group "momentum" (SGD)
                                    or betas[0] (Adam)
    {case}__metrics (n,)            only for ReduceLROnPlateau cases: the metric of each step
                                    (noisy, flattening curves; some rounded to 2 decimals so
                                    equal values occur)

clip_grad_norm.npz -- torch.nn.utils.clip_grad_norm_ on three parameters' gradients
    cases       JSON str: {case: {"max_norm": m, "norm_type": p (a number or "inf"),
                "missing": [indices of parameters without a gradient], "dtype": "float64"|
                "float32", "scale": s (gradients multiplied by s)}}
    g0 (4, 3), g1 (5,), g2 (2, 3, 2)   the gradients before clipping (g1 has exact zeros)
    {case}__total ()                   the returned total norm (in the case's dtype)
    {case}__g{i}                       gradient i after clipping (not for missing ones)

batchnorm1d.npz -- torch.nn.BatchNorm1d(4, eps=1e-5, momentum=0.1) on (N=6, C=4) inputs
    x (3, 6, 4)        three training batches; x[0] is the one whose gradients are stored
    weight, bias (4,)  affine parameters (set before the first batch)
    dy (6, 4)          upstream gradient of the output for x[0]
    y (6, 4)           training-mode output for x[0] (normalized with the biased batch variance)
    dx (6, 4), dweight (4,), dbias (4,)   gradients of sum(y * dy)
    running_mean (3, 4), running_var (3, 4)   row k = after batch k+1 (starts 0 and 1;
                       running_var uses the UNBIASED batch variance, as PyTorch does)
    x_eval (5, 4), y_eval (5, 4)   eval-mode output after the 3 batches
    eps, momentum      scalars

cross_entropy.npz -- torch.nn.functional.cross_entropy(logits, target, ...)
    logits (5, 4), large_logits (5, 4) (entries ~1e4)
    labels (5,) int64, soft_targets (5, 4) (rows are probability vectors)
    upstream_none (5,)  upstream gradient used for reduction='none'
    label_smoothing     0.1
    {src}_{target}_{smooth}_{reduction}__loss and __grad, where src in {"logits", "large"},
        target in {"labels", "soft"}, smooth in {"plain" (0.0), "smooth" (label_smoothing)},
        reduction in {"mean", "sum", "none"}; __loss is a scalar ((5,) for 'none'); __grad is
        d loss / d logits for mean/sum and d (loss . upstream_none) / d logits for 'none'

losses.npz -- each loss of torch.nn.functional, for each case and reduction
    cases       JSON str: {case: {"fn": name in torch.nn.functional, "input": key, "target": key,
                "weight": key or null, "pos_weight": key or null, "kwargs": {...},
                "target_grad": bool, "input_grad": bool}}
    logits, log_probs, probs, probs_edge (entries exactly 0 and 1), inputs, targets (6, 4);
    labels, labels_ignored (two are -100), labels_custom (6,) int64; soft_targets, binary
    targets (6, 4); class_weight (4,), element_weight (6, 4), pos_weight (4,);
    upstream (6, 4) and upstream_rows (6,): upstream gradients of reduction='none' (elementwise
    losses and per-sample losses)
    {case}_{reduction}__loss, __grad (d loss / d input; d (loss . upstream) for 'none'; absent
    when input_grad is false) and __grad_target (when target_grad)

activations.npz -- gelu, silu and softplus of torch.nn.functional
    cases       JSON str: {case: {"fn": name, "kwargs": {...}}}
    x (5, 8)    values in [-8, 8] with entries at 0, +-30 and near softplus's threshold
    upstream (5, 8)
    {case}__y and {case}__grad = d sum(y * upstream) / d x

layer_norm.npz -- torch.nn.LayerNorm on x (4, 3, 5)
    cases       JSON str: {case: {"normalized_shape": [...], "elementwise_affine": bool,
                "bias": bool, "eps": float}}
    x (4, 3, 5), upstream (4, 3, 5); {case}__weight and {case}__bias (set before the forward,
    when present); {case}__y, {case}__dx, {case}__dweight, {case}__dbias (when present)

softmax.npz -- softmax and log_softmax of fixed logits
    logits (5, 4)      row 3 is shifted by +1e4 and row 4 has a -1e4 entry (stability checks)
    upstream (5, 4)    upstream gradient
    {fn}_axis{a} (5, 4) and {fn}_axis{a}__grad (5, 4) for fn in {"softmax", "log_softmax"},
        a in {0, 1}; __grad = d sum(out * upstream) / d logits

functional.npz -- torch.autograd.functional on small functions of float64 tensors
    cases       JSON str: {case: {"inputs": [shape of each input], "tuple": bool (the inputs are
                passed as a tuple; else the one input as a Tensor)}}; the functions are
                FUNCTIONAL_FNS below (method calls only, so tests write them the same way);
                "scalar" is 0.5 * the sum of the squares of a function's outputs (the function
                of hessian, hvp and vhp)
    {case}__x{k}       input k;  {case}__v_out{i}: v of vjp for output i;  {case}__v_in{k}: v
                       of jvp, hvp and vhp for input k
    {case}__structure  JSON str: {call: the result's structure, a tuple as a list and a Tensor as
                       "T" + its shape}, for call in CALLS
    {case}__{call}[_i[_j]]   the result's tensors, indexed by their place in the nested tuples
                       (call in CALLS; vjp, jvp, hvp and vhp return (value, product) pairs)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 20240611
HERE = Path(__file__).resolve().parent

OPTIMIZER_CASES = {
    "sgd": {"optimizer": "SGD", "kwargs": {"lr": 0.1}},
    "sgd_momentum": {"optimizer": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9}},
    "sgd_dampening": {"optimizer": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}},
    "sgd_nesterov": {"optimizer": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.8, "nesterov": True}},
    "sgd_weight_decay": {"optimizer": "SGD", "kwargs": {"lr": 0.1, "weight_decay": 0.2}},
    "sgd_all_maximize": {
        "optimizer": "SGD",
        "kwargs": {
            "lr": 0.05,
            "momentum": 0.7,
            "dampening": 0.1,
            "weight_decay": 0.3,
            "maximize": True,
        },
    },
    "sgd_groups": {
        "optimizer": "SGD",
        "kwargs": {"lr": 0.1},
        "groups": [{"lr": 0.01, "weight_decay": 0.1}, {"momentum": 0.5}],
    },
    "sgd_float32": {"optimizer": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9}, "dtype": "float32"},
    "adagrad": {"optimizer": "Adagrad", "kwargs": {"lr": 0.1}},
    "adagrad_lr_decay": {"optimizer": "Adagrad", "kwargs": {"lr": 0.1, "lr_decay": 0.5}},
    "adagrad_wd_initial": {
        "optimizer": "Adagrad",
        "kwargs": {"lr": 0.1, "weight_decay": 0.2, "initial_accumulator_value": 0.1, "eps": 1e-3},
    },
    "adagrad_maximize": {"optimizer": "Adagrad", "kwargs": {"lr": 0.1, "maximize": True}},
    "adagrad_float32": {"optimizer": "Adagrad", "kwargs": {"lr": 0.1}, "dtype": "float32"},
    "rmsprop": {"optimizer": "RMSprop", "kwargs": {"lr": 0.01}},
    "rmsprop_momentum": {
        "optimizer": "RMSprop",
        "kwargs": {"lr": 0.01, "momentum": 0.9, "alpha": 0.9},
    },
    "rmsprop_centered": {"optimizer": "RMSprop", "kwargs": {"lr": 0.01, "centered": True}},
    "rmsprop_centered_momentum_wd": {
        "optimizer": "RMSprop",
        "kwargs": {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-4},
    },
    "rmsprop_maximize": {"optimizer": "RMSprop", "kwargs": {"lr": 0.01, "maximize": True}},
    "adam": {"optimizer": "Adam", "kwargs": {"lr": 0.1}},
    "adam_amsgrad": {"optimizer": "Adam", "kwargs": {"lr": 0.1, "amsgrad": True}},
    "adam_weight_decay": {"optimizer": "Adam", "kwargs": {"lr": 0.1, "weight_decay": 0.2}},
    "adam_betas_eps": {
        "optimizer": "Adam",
        "kwargs": {"lr": 0.1, "betas": [0.5, 0.9], "eps": 1e-2},
    },
    "adam_maximize": {
        "optimizer": "Adam",
        "kwargs": {"lr": 0.1, "maximize": True, "amsgrad": True},
    },
    "adam_groups": {
        "optimizer": "Adam",
        "kwargs": {"lr": 0.1},
        "groups": [{"lr": 0.01}, {"betas": [0.8, 0.99], "weight_decay": 0.1}],
    },
    "adam_float32": {"optimizer": "Adam", "kwargs": {"lr": 0.1}, "dtype": "float32"},
    "adamw": {"optimizer": "AdamW", "kwargs": {"lr": 0.1}},
    "adamw_weight_decay_amsgrad": {
        "optimizer": "AdamW",
        "kwargs": {"lr": 0.1, "weight_decay": 0.5, "amsgrad": True},
    },
}

SCHEDULER_CASES = {
    "cyclic_triangular": {
        "scheduler": "CyclicLR",
        "kwargs": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "triangular"},
        "steps": 20,
    },
    "cyclic_triangular2": {
        "scheduler": "CyclicLR",
        "kwargs": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "triangular2"},
        "steps": 20,
    },
    "cyclic_exp_range": {
        "scheduler": "CyclicLR",
        "kwargs": {
            "base_lr": 0.01,
            "max_lr": 0.1,
            "step_size_up": 5,
            "mode": "exp_range",
            "gamma": 0.9,
        },
        "steps": 20,
    },
    "cyclic_asymmetric": {
        "scheduler": "CyclicLR",
        "kwargs": {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 3, "step_size_down": 5},
        "steps": 16,
    },
    "cyclic_groups": {
        "scheduler": "CyclicLR",
        "kwargs": {
            "base_lr": [0.01, 0.001],
            "max_lr": [0.1, 0.05],
            "step_size_up": 4,
            "mode": "triangular2",
        },
        "group_lrs": [0.5, 0.5],
        "steps": 16,
    },
    "cyclic_momentum_sgd": {
        "scheduler": "CyclicLR",
        "kwargs": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "cycle_momentum": True},
        "optimizer_kwargs": {"lr": 0.1, "momentum": 0.9},
        "steps": 16,
    },
    "cyclic_momentum_adam": {
        "scheduler": "CyclicLR",
        "kwargs": {
            "base_lr": 0.01,
            "max_lr": 0.1,
            "step_size_up": 4,
            "mode": "exp_range",
            "gamma": 0.95,
            "cycle_momentum": True,
            "base_momentum": 0.7,
            "max_momentum": 0.95,
        },
        "optimizer": "Adam",
        "steps": 16,
    },
    "steplr": {"scheduler": "StepLR", "kwargs": {"step_size": 3, "gamma": 0.5}, "steps": 10},
    "cosine": {
        "scheduler": "CosineAnnealingLR",
        "kwargs": {"T_max": 10, "eta_min": 0.001},
        "steps": 25,
    },
    "constantlr": {
        "scheduler": "ConstantLR",
        "kwargs": {"factor": 0.5, "total_iters": 4},
        "steps": 8,
    },
    "onecycle_cos": {
        "scheduler": "OneCycleLR",
        "kwargs": {"max_lr": 0.1, "total_steps": 20, "cycle_momentum": False},
        "steps": 19,
    },
    "onecycle_linear": {
        "scheduler": "OneCycleLR",
        "kwargs": {
            "max_lr": 0.1,
            "total_steps": 20,
            "anneal_strategy": "linear",
            "cycle_momentum": False,
        },
        "steps": 19,
    },
    "onecycle_three_phase": {
        "scheduler": "OneCycleLR",
        "kwargs": {"max_lr": 0.1, "total_steps": 20, "three_phase": True, "cycle_momentum": False},
        "steps": 19,
    },
    "onecycle_epochs": {
        "scheduler": "OneCycleLR",
        "kwargs": {
            "max_lr": [0.1, 0.2],
            "epochs": 4,
            "steps_per_epoch": 5,
            "pct_start": 0.25,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
            "cycle_momentum": False,
        },
        "group_lrs": [0.1, 0.1],
        "steps": 19,
    },
    "onecycle_momentum_sgd": {
        "scheduler": "OneCycleLR",
        "kwargs": {"max_lr": 0.1, "total_steps": 20, "cycle_momentum": True},
        "optimizer_kwargs": {"lr": 0.1, "momentum": 0.9},
        "steps": 19,
    },
    "onecycle_momentum_adam": {
        "scheduler": "OneCycleLR",
        "kwargs": {"max_lr": 0.1, "total_steps": 20, "three_phase": True, "cycle_momentum": True},
        "optimizer": "Adam",
        "steps": 19,
    },
    "multistep": {
        "scheduler": "MultiStepLR",
        "kwargs": {"milestones": [30, 80, 80, 200], "gamma": 0.5},
        "group_lrs": [0.1, 0.03, 1.0],
        "steps": 300,
    },
    "exponential": {
        "scheduler": "ExponentialLR",
        "kwargs": {"gamma": 0.99},
        "group_lrs": [0.1, 0.5],
        "steps": 400,
    },
    "linear_warmup": {
        "scheduler": "LinearLR",
        "kwargs": {"start_factor": 0.1, "total_iters": 50},
        "group_lrs": [0.1, 0.02],
        "steps": 300,
    },
    "linear_decay": {
        "scheduler": "LinearLR",
        "kwargs": {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 250},
        "group_lrs": [0.1, 0.3],
        "steps": 300,
    },
    "warm_restarts": {
        "scheduler": "CosineAnnealingWarmRestarts",
        "kwargs": {"T_0": 10, "eta_min": 0.001},
        "group_lrs": [0.1, 0.05],
        "steps": 300,
    },
    "warm_restarts_mult": {
        "scheduler": "CosineAnnealingWarmRestarts",
        "kwargs": {"T_0": 5, "T_mult": 3},
        "group_lrs": [0.1, 0.2],
        "steps": 400,
    },
    "warm_restarts_fractional": {
        "scheduler": "CosineAnnealingWarmRestarts",
        "kwargs": {"T_0": 3, "T_mult": 2, "eta_min": 0.01},
        "epochs_per_unit": 7,
        "steps": 300,
    },
    "sequential": {
        "scheduler": "SequentialLR",
        "schedulers": [
            {"scheduler": "LinearLR", "kwargs": {"start_factor": 0.01, "total_iters": 20}},
            {"scheduler": "CosineAnnealingLR", "kwargs": {"T_max": 100, "eta_min": 1e-4}},
            {"scheduler": "ExponentialLR", "kwargs": {"gamma": 0.98}},
        ],
        "kwargs": {"milestones": [20, 120]},
        "group_lrs": [0.1, 0.05],
        "steps": 300,
    },
    "sequential_restarts": {
        "scheduler": "SequentialLR",
        "schedulers": [
            {"scheduler": "ConstantLR", "kwargs": {"factor": 0.5, "total_iters": 10}},
            {"scheduler": "CosineAnnealingWarmRestarts", "kwargs": {"T_0": 10, "T_mult": 2}},
            {"scheduler": "MultiStepLR", "kwargs": {"milestones": [50, 100], "gamma": 0.3}},
            {"scheduler": "StepLR", "kwargs": {"step_size": 7, "gamma": 0.8}},
        ],
        "kwargs": {"milestones": [10, 160, 250]},
        "group_lrs": [0.1, 0.4],
        "steps": 300,
    },
    "plateau_min_rel": {
        "scheduler": "ReduceLROnPlateau",
        "kwargs": {"patience": 5},
        "metrics": "loss",
        "group_lrs": [0.1, 0.01],
        "steps": 300,
    },
    "plateau_min_abs_cooldown": {
        "scheduler": "ReduceLROnPlateau",
        "kwargs": {
            "threshold": 0.01,
            "threshold_mode": "abs",
            "factor": 0.5,
            "patience": 3,
            "cooldown": 4,
            "min_lr": [1e-3, 1e-4],
        },
        "metrics": "loss",
        "group_lrs": [0.1, 0.01],
        "steps": 300,
    },
    "plateau_max_rel": {
        "scheduler": "ReduceLROnPlateau",
        "kwargs": {"mode": "max", "threshold": 0.001, "factor": 0.7, "patience": 2},
        "metrics": "accuracy",
        "group_lrs": [0.1, 0.05],
        "steps": 300,
    },
    "plateau_max_abs_eps": {
        "scheduler": "ReduceLROnPlateau",
        "kwargs": {
            "mode": "max",
            "threshold": 0.005,
            "threshold_mode": "abs",
            "factor": 0.5,
            "patience": 0,
            "cooldown": 1,
            "min_lr": 0.002,
            "eps": 1e-3,
        },
        "metrics": "accuracy",
        "group_lrs": [0.1, 0.02],
        "steps": 300,
    },
}

CLIP_CASES = {
    "l2_clipped": {"max_norm": 1.0, "norm_type": 2},
    "l2_not_clipped": {"max_norm": 100.0, "norm_type": 2},
    "l2_missing_grad": {"max_norm": 0.5, "norm_type": 2, "missing": [1]},
    "l1": {"max_norm": 2.0, "norm_type": 1},
    "inf": {"max_norm": 0.5, "norm_type": "inf"},
    "p3_5": {"max_norm": 1.0, "norm_type": 3.5},
    "p0_5": {"max_norm": 10.0, "norm_type": 0.5},
    "zero_norm_count": {"max_norm": 2.0, "norm_type": 0},
    "tiny_grads": {"max_norm": 1e-7, "norm_type": 2, "scale": 1e-8},
    "float32": {"max_norm": 1.0, "norm_type": 2, "dtype": "float32"},
    "float32_inf": {"max_norm": 0.3, "norm_type": "inf", "dtype": "float32"},
}


def _header() -> dict[str, np.ndarray]:
    return {"torch_version": np.array(torch.__version__), "seed": np.array(SEED)}


def make_optimizers() -> dict[str, np.ndarray]:
    """Run each optimizer case in torch on the same parameters and gradient sequence."""
    rng = np.random.default_rng(SEED)
    p0_init = rng.standard_normal(3)
    p1_init = rng.standard_normal((2, 2))
    scales = np.array([2.0, 1.5, 0.2, 0.1, 1.0])  # shrinking gradients make amsgrad's max matter
    g0 = rng.standard_normal((5, 3)) * scales[:, None]
    g1 = rng.standard_normal((5, 2, 2)) * scales[:, None, None]
    p1_grad_missing = np.array([False, False, True, False, False])
    out = {
        **_header(),
        "cases": np.array(json.dumps(OPTIMIZER_CASES, sort_keys=True)),
        "p0_init": p0_init,
        "p1_init": p1_init,
        "g0": g0,
        "g1": g1,
        "p1_grad_missing": p1_grad_missing,
    }
    for name, case in OPTIMIZER_CASES.items():
        dtype = getattr(torch, case.get("dtype", "float64"))
        p0 = torch.tensor(p0_init, dtype=dtype, requires_grad=True)
        p1 = torch.tensor(p1_init, dtype=dtype, requires_grad=True)
        kwargs = dict(case["kwargs"])
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        if "groups" in case:
            groups = [dict(case["groups"][0], params=[p0]), dict(case["groups"][1], params=[p1])]
            for group in groups:
                if "betas" in group:
                    group["betas"] = tuple(group["betas"])
        else:
            groups = [p0, p1]
        opt = getattr(torch.optim, case["optimizer"])(groups, foreach=False, **kwargs)
        history0, history1 = [p0.detach().numpy().copy()], [p1.detach().numpy().copy()]
        for k in range(5):
            opt.zero_grad(set_to_none=True)
            p0.grad = torch.tensor(g0[k], dtype=dtype)
            if not p1_grad_missing[k]:
                p1.grad = torch.tensor(g1[k], dtype=dtype)
            opt.step()
            history0.append(p0.detach().numpy().copy())
            history1.append(p1.detach().numpy().copy())
        out[f"{name}__p0"] = np.stack(history0)
        out[f"{name}__p1"] = np.stack(history1)
    return out


def plateau_metrics(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """A validation curve for ReduceLROnPlateau: a noisy loss that levels off ("loss"), or an
    accuracy that rises and levels off, rounded to 2 decimals so that ties occur ("accuracy")."""
    t = np.arange(n)
    if kind == "loss":
        return 2.0 / (1.0 + t / 15.0) + 0.3 + 0.03 * rng.standard_normal(n)
    return np.round(0.9 - 0.6 / (1.0 + t / 20.0) + 0.01 * rng.standard_normal(n), 2)


def _torch_scheduler(opt, spec):
    """The scheduler `spec` describes (a SequentialLR's parts built first, in order)."""
    kwargs = dict(spec["kwargs"])
    if spec["scheduler"] == "SequentialLR":
        kwargs["schedulers"] = [_torch_scheduler(opt, part) for part in spec["schedulers"]]
    return getattr(torch.optim.lr_scheduler, spec["scheduler"])(opt, **kwargs)


def make_schedulers() -> dict[str, np.ndarray]:
    """Record the lr (and cycled momentum) of each scheduler case after every step."""
    rng = np.random.default_rng(SEED)
    out = {**_header(), "cases": np.array(json.dumps(SCHEDULER_CASES, sort_keys=True))}
    for name, case in SCHEDULER_CASES.items():
        group_lrs = case.get("group_lrs", [0.1])
        params = [torch.zeros(1, requires_grad=True) for _ in group_lrs]
        groups = [{"params": [p], "lr": lr} for p, lr in zip(params, group_lrs)]
        opt_name = case.get("optimizer", "SGD")
        opt = getattr(torch.optim, opt_name)(groups, **case.get("optimizer_kwargs", {"lr": 0.1}))
        sched = _torch_scheduler(opt, case)
        cycles_momentum = case["kwargs"].get("cycle_momentum", False)
        metrics = None
        if "metrics" in case:
            metrics = plateau_metrics(rng, case["steps"], case["metrics"])
            out[f"{name}__metrics"] = metrics

        def momentum_now():
            if opt_name == "Adam":
                return [group["betas"][0] for group in opt.param_groups]
            return [group["momentum"] for group in opt.param_groups]

        lrs, momentums = [sched.get_last_lr()], [momentum_now()]
        for k in range(case["steps"]):
            opt.step()  # no gradients: a no-op that keeps torch's call-order check quiet
            if metrics is not None:
                sched.step(float(metrics[k]))
            elif "epochs_per_unit" in case:
                sched.step((k + 1) / case["epochs_per_unit"])
            else:
                sched.step()
            lrs.append(sched.get_last_lr())
            momentums.append(momentum_now())
        out[f"{name}__lr"] = np.array(lrs, dtype=np.float64)
        if cycles_momentum:
            out[f"{name}__momentum"] = np.array(momentums, dtype=np.float64)
    return out


def make_clip_grad_norm() -> dict[str, np.ndarray]:
    """clip_grad_norm_'s total norm and clipped gradients for each norm type and case."""
    rng = np.random.default_rng(SEED)
    grads = [rng.standard_normal((4, 3)), rng.standard_normal(5) * 3.0,
             rng.standard_normal((2, 3, 2)) * 0.1]
    grads[1][[1, 3]] = 0.0
    out = {
        **_header(),
        "cases": np.array(json.dumps(CLIP_CASES, sort_keys=True)),
        **{f"g{i}": g for i, g in enumerate(grads)},
    }
    for name, case in CLIP_CASES.items():
        dtype = getattr(torch, case.get("dtype", "float64"))
        params = []
        for i, g in enumerate(grads):
            p = torch.zeros(g.shape, dtype=dtype, requires_grad=True)
            if i not in case.get("missing", []):
                p.grad = torch.tensor(g * case.get("scale", 1.0), dtype=dtype)
            params.append(p)
        total = torch.nn.utils.clip_grad_norm_(
            params, case["max_norm"], norm_type=float(case["norm_type"]), foreach=False
        )
        out[f"{name}__total"] = total.numpy()
        for i, p in enumerate(params):
            if p.grad is not None:
                out[f"{name}__g{i}"] = p.grad.numpy()
    return out


def make_batchnorm1d() -> dict[str, np.ndarray]:
    """BatchNorm1d forward/backward in training mode, running statistics, eval output."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((3, 6, 4)) * np.array([1.0, 2.0, 0.5, 3.0]) + np.array(
        [0.5, -1.0, 2.0, 0.0]
    )
    weight = rng.uniform(0.5, 1.5, 4)
    bias = rng.standard_normal(4)
    dy = rng.standard_normal((6, 4))
    x_eval = rng.standard_normal((5, 4)) * 2.0
    bn = torch.nn.BatchNorm1d(4, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(weight))
        bn.bias.copy_(torch.from_numpy(bias))
    bn.train()
    x0 = torch.tensor(x[0], requires_grad=True)
    y = bn(x0)
    (y * torch.from_numpy(dy)).sum().backward()
    running_mean, running_var = [bn.running_mean.numpy().copy()], [bn.running_var.numpy().copy()]
    with torch.no_grad():
        for batch in x[1:]:
            bn(torch.from_numpy(batch))
            running_mean.append(bn.running_mean.numpy().copy())
            running_var.append(bn.running_var.numpy().copy())
        bn.eval()
        y_eval = bn(torch.from_numpy(x_eval))
    return {
        **_header(),
        "x": x,
        "weight": weight,
        "bias": bias,
        "dy": dy,
        "y": y.detach().numpy(),
        "dx": x0.grad.numpy(),
        "dweight": bn.weight.grad.numpy(),
        "dbias": bn.bias.grad.numpy(),
        "running_mean": np.stack(running_mean),
        "running_var": np.stack(running_var),
        "x_eval": x_eval,
        "y_eval": y_eval.numpy(),
        "eps": np.array(1e-5),
        "momentum": np.array(0.1),
    }


def make_cross_entropy() -> dict[str, np.ndarray]:
    """cross_entropy values and logit gradients for hard/soft targets, smoothing, reductions."""
    rng = np.random.default_rng(SEED)
    logits = rng.standard_normal((5, 4)) * 3.0
    large_logits = rng.standard_normal((5, 4)) * 1e4
    labels = rng.integers(0, 4, 5)
    soft = rng.uniform(0.0, 1.0, (5, 4)) ** 2
    soft_targets = soft / soft.sum(axis=1, keepdims=True)
    upstream_none = rng.standard_normal(5)
    label_smoothing = 0.1
    out = {
        **_header(),
        "logits": logits,
        "large_logits": large_logits,
        "labels": labels.astype(np.int64),
        "soft_targets": soft_targets,
        "upstream_none": upstream_none,
        "label_smoothing": np.array(label_smoothing),
    }
    targets = {
        "labels": torch.from_numpy(labels.astype(np.int64)),
        "soft": torch.from_numpy(soft_targets),
    }
    for src, values in (("logits", logits), ("large", large_logits)):
        for target_name, target in targets.items():
            for smooth_name, smoothing in (("plain", 0.0), ("smooth", label_smoothing)):
                for reduction in ("mean", "sum", "none"):
                    z = torch.tensor(values, requires_grad=True)
                    loss = torch.nn.functional.cross_entropy(
                        z, target, reduction=reduction, label_smoothing=smoothing
                    )
                    if reduction == "none":
                        (loss * torch.from_numpy(upstream_none)).sum().backward()
                    else:
                        loss.backward()
                    key = f"{src}_{target_name}_{smooth_name}_{reduction}"
                    out[f"{key}__loss"] = loss.detach().numpy()
                    out[f"{key}__grad"] = z.grad.numpy()
    return out


def make_softmax() -> dict[str, np.ndarray]:
    """softmax / log_softmax along both axes, with a shifted row and a very negative entry."""
    rng = np.random.default_rng(SEED)
    logits = rng.standard_normal((5, 4)) * 2.0
    logits[3] += 1e4
    logits[4, 1] = -1e4
    upstream = rng.standard_normal((5, 4))
    out = {**_header(), "logits": logits, "upstream": upstream}
    for fn_name in ("softmax", "log_softmax"):
        fn = getattr(torch, fn_name)
        for axis in (0, 1):
            z = torch.tensor(logits, requires_grad=True)
            y = fn(z, dim=axis)
            (y * torch.from_numpy(upstream)).sum().backward()
            out[f"{fn_name}_axis{axis}"] = y.detach().numpy()
            out[f"{fn_name}_axis{axis}__grad"] = z.grad.numpy()
    return out


LOSS_CASES = {
    "ce_labels": {"fn": "cross_entropy", "input": "logits", "target": "labels"},
    "ce_weight": {"fn": "cross_entropy", "input": "logits", "target": "labels",
                  "weight": "class_weight"},
    "ce_ignored": {"fn": "cross_entropy", "input": "logits", "target": "labels_ignored"},
    "ce_ignored_weight_smooth": {"fn": "cross_entropy", "input": "logits",
                                 "target": "labels_ignored", "weight": "class_weight",
                                 "kwargs": {"label_smoothing": 0.2}},
    "ce_custom_ignore": {"fn": "cross_entropy", "input": "logits", "target": "labels_custom",
                         "weight": "class_weight", "kwargs": {"ignore_index": 2}},
    "ce_soft_weight": {"fn": "cross_entropy", "input": "logits", "target": "soft_targets",
                       "weight": "class_weight", "kwargs": {"label_smoothing": 0.1}},
    "nll_labels": {"fn": "nll_loss", "input": "log_probs", "target": "labels"},
    "nll_weight_ignored": {"fn": "nll_loss", "input": "log_probs", "target": "labels_ignored",
                           "weight": "class_weight"},
    "nll_custom_ignore": {"fn": "nll_loss", "input": "log_probs", "target": "labels_custom",
                          "kwargs": {"ignore_index": 2}},
    "mse": {"fn": "mse_loss", "input": "inputs", "target": "targets", "target_grad": True},
    "l1": {"fn": "l1_loss", "input": "inputs", "target": "targets", "target_grad": True},
    "bce": {"fn": "binary_cross_entropy", "input": "probs", "target": "soft_targets"},
    "bce_weight": {"fn": "binary_cross_entropy", "input": "probs", "target": "binary",
                   "weight": "element_weight"},
    "bce_class_weight": {"fn": "binary_cross_entropy", "input": "probs",
                         "target": "soft_targets", "weight": "class_weight"},
    "bce_edge": {"fn": "binary_cross_entropy", "input": "probs_edge", "target": "binary",
                 "input_grad": False},
    "bce_logits": {"fn": "binary_cross_entropy_with_logits", "input": "logits",
                   "target": "soft_targets", "target_grad": True},
    "bce_logits_weights": {"fn": "binary_cross_entropy_with_logits", "input": "logits",
                           "target": "binary", "weight": "class_weight",
                           "pos_weight": "pos_weight"},
    "bce_logits_pos_weight": {"fn": "binary_cross_entropy_with_logits", "input": "logits",
                              "target": "soft_targets", "pos_weight": "pos_weight",
                              "target_grad": True},
}

ACTIVATION_CASES = {
    "gelu": {"fn": "gelu", "kwargs": {}},
    "gelu_tanh": {"fn": "gelu", "kwargs": {"approximate": "tanh"}},
    "silu": {"fn": "silu", "kwargs": {}},
    "softplus": {"fn": "softplus", "kwargs": {}},
    "softplus_beta": {"fn": "softplus", "kwargs": {"beta": 2.0, "threshold": 5.0}},
    "softplus_small_beta": {"fn": "softplus", "kwargs": {"beta": 0.5}},
}

LAYER_NORM_CASES = {
    "last": {"normalized_shape": [5], "elementwise_affine": True, "bias": True, "eps": 1e-5},
    "last_two": {"normalized_shape": [3, 5], "elementwise_affine": True, "bias": True,
                 "eps": 1e-3},
    "no_affine": {"normalized_shape": [5], "elementwise_affine": False, "bias": True,
                  "eps": 1e-5},
    "no_bias": {"normalized_shape": [5], "elementwise_affine": True, "bias": False,
                "eps": 1e-5},
}


def make_losses() -> dict[str, np.ndarray]:
    """Every loss case of LOSS_CASES in each reduction: value and gradients."""
    rng = np.random.default_rng(SEED)
    logits = rng.standard_normal((6, 4)) * 2.0
    logits[5] *= 20.0  # large logits: the stable forms matter
    labels = rng.integers(0, 4, 6)
    labels_ignored = labels.copy()
    labels_ignored[[1, 4]] = -100
    labels_custom = np.array([2, 0, 2, 1, 3, 2])
    soft = rng.uniform(0.0, 1.0, (6, 4)) ** 2
    probs_edge = rng.uniform(0.05, 0.95, (6, 4))
    probs_edge[0, :2] = [0.0, 1.0]
    probs_edge[1, :2] = [1.0, 0.0]
    binary = (rng.uniform(size=(6, 4)) > 0.5).astype(np.float64)
    binary[0, :2] = [1.0, 0.0]  # edge probabilities meet the opposite target: log clamped
    binary[1, :2] = [0.0, 1.0]
    inputs = rng.standard_normal((6, 4))
    targets = rng.standard_normal((6, 4))
    targets[0, 0] = inputs[0, 0]  # a tie: l1's gradient is 0 there
    arrays = {
        "logits": logits,
        "log_probs": torch.log_softmax(torch.from_numpy(logits), 1).numpy(),
        "probs": rng.uniform(0.02, 0.98, (6, 4)),
        "probs_edge": probs_edge,
        "inputs": inputs,
        "targets": targets,
        "labels": labels.astype(np.int64),
        "labels_ignored": labels_ignored.astype(np.int64),
        "labels_custom": labels_custom.astype(np.int64),
        "soft_targets": soft / soft.sum(axis=1, keepdims=True),
        "binary": binary,
        "class_weight": rng.uniform(0.5, 2.0, 4),
        "element_weight": rng.uniform(0.5, 2.0, (6, 4)),
        "pos_weight": rng.uniform(0.5, 3.0, 4),
        "upstream": rng.standard_normal((6, 4)),
        "upstream_rows": rng.standard_normal(6),
    }
    out = {**_header(), "cases": np.array(json.dumps(LOSS_CASES, sort_keys=True)), **arrays}
    for name, case in LOSS_CASES.items():
        fn = getattr(torch.nn.functional, case["fn"])
        for reduction in ("mean", "sum", "none"):
            x = torch.tensor(arrays[case["input"]], requires_grad=True)
            t = torch.tensor(arrays[case["target"]],
                             requires_grad=case.get("target_grad", False))
            kwargs = dict(case.get("kwargs", {}), reduction=reduction)
            for key in ("weight", "pos_weight"):
                if case.get(key):
                    kwargs[key] = torch.from_numpy(arrays[case[key]])
            loss = fn(x, t, **kwargs)
            key = f"{name}_{reduction}"
            out[f"{key}__loss"] = loss.detach().numpy()
            if reduction == "none":
                upstream = arrays["upstream" if loss.ndim == 2 else "upstream_rows"]
                loss = (loss * torch.from_numpy(upstream)).sum()
            loss.backward()
            if case.get("input_grad", True):
                out[f"{key}__grad"] = x.grad.numpy()
            if case.get("target_grad", False):
                out[f"{key}__grad_target"] = t.grad.numpy()
    return out


def make_activations() -> dict[str, np.ndarray]:
    """gelu (erf and tanh forms), silu and softplus (beta, threshold): values and gradients."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-8.0, 8.0, (5, 8))
    x[0, :6] = [0.0, 30.0, -30.0, 2.4, 2.6, 25.0]  # softplus_beta's threshold is at x = 2.5
    upstream = rng.standard_normal((5, 8))
    out = {**_header(), "cases": np.array(json.dumps(ACTIVATION_CASES, sort_keys=True)),
           "x": x, "upstream": upstream}
    for name, case in ACTIVATION_CASES.items():
        z = torch.tensor(x, requires_grad=True)
        y = getattr(torch.nn.functional, case["fn"])(z, **case["kwargs"])
        (y * torch.from_numpy(upstream)).sum().backward()
        out[f"{name}__y"] = y.detach().numpy()
        out[f"{name}__grad"] = z.grad.numpy()
    return out


def make_layer_norm() -> dict[str, np.ndarray]:
    """torch.nn.LayerNorm over the last one or two dimensions, with and without affine."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((4, 3, 5)) * 2.0 + 1.0
    upstream = rng.standard_normal((4, 3, 5))
    out = {**_header(), "cases": np.array(json.dumps(LAYER_NORM_CASES, sort_keys=True)),
           "x": x, "upstream": upstream}
    for name, case in LAYER_NORM_CASES.items():
        ln = torch.nn.LayerNorm(case["normalized_shape"], eps=case["eps"],
                                elementwise_affine=case["elementwise_affine"],
                                bias=case["bias"]).double()
        with torch.no_grad():
            for pname in ("weight", "bias"):
                p = getattr(ln, pname)
                if p is not None:
                    p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, tuple(p.shape))))
                    out[f"{name}__{pname}"] = p.detach().numpy().copy()
        z = torch.tensor(x, requires_grad=True)
        y = ln(z)
        (y * torch.from_numpy(upstream)).sum().backward()
        out[f"{name}__y"] = y.detach().numpy()
        out[f"{name}__dx"] = z.grad.numpy()
        for pname in ("weight", "bias"):
            p = getattr(ln, pname)
            if p is not None:
                out[f"{name}__d{pname}"] = p.grad.numpy()
    return out


FUNCTIONAL_CASES = {
    "elementwise": {"inputs": [[3]], "tuple": False},
    "matmul": {"inputs": [[2, 3], [3, 2]], "tuple": True},
    "reduction": {"inputs": [[2, 3]], "tuple": False},
    "broadcast": {"inputs": [[3, 1], [4]], "tuple": True},
    "mlp": {"inputs": [[4, 3], [3, 5], [5], [5, 2]], "tuple": True},
    "multi_output": {"inputs": [[3], [2]], "tuple": True},
    "scalar_input": {"inputs": [[]], "tuple": False},
    "unused_input": {"inputs": [[2], [3]], "tuple": True},
}
SCALAR_INPUT_C = np.array([0.5, -1.0, 2.0])  # scalar_input's constant

FUNCTIONAL_FNS = {
    "elementwise": lambda x: x.exp() * x.tanh() + x ** 3,
    "matmul": lambda a, b: a @ b,
    "reduction": lambda x: (x ** 2).sum(1) + x.mean(1) ** 2,
    "broadcast": lambda x, y: x * y + y.exp(),
    "mlp": lambda x, w1, b1, w2: (x @ w1 + b1).tanh() @ w2,
    "multi_output": lambda x, y: (x * y.sum(), (x.sum() * y).tanh(), (x ** 2).sum()),
    "scalar_input": lambda x: x.exp() * torch.from_numpy(SCALAR_INPUT_C) + x ** 2,
    "unused_input": lambda x, y: (x ** 2, x.sum() * 2),
}
CALLS = ("value", "jacobian", "hessian", "vjp", "jvp", "hvp", "vhp")


def _scalar_of(fn):
    """0.5 * the sum of the squares of fn's outputs: the one-element function of hessian, hvp
    and vhp for a case."""
    def scalar(*xs):
        out = fn(*xs)
        return sum(((o * o).sum() for o in (out if isinstance(out, tuple) else (out,))), 0) * 0.5
    return scalar


def _structure(res):
    """A result's nesting: a tuple as a list, a Tensor as "T" and its shape."""
    if isinstance(res, tuple):
        return [_structure(r) for r in res]
    return f"T{list(res.shape)}"


def _flatten(res, key, out):
    """Each tensor of a nested result as out[key + its indices]."""
    if isinstance(res, tuple):
        for i, r in enumerate(res):
            _flatten(r, f"{key}_{i}", out)
    else:
        out[key] = res.detach().numpy()


def make_functional() -> dict[str, np.ndarray]:
    """jacobian, hessian, vjp, jvp, hvp and vhp of each FUNCTIONAL_CASES function."""
    from torch.autograd import functional as AF
    rng = np.random.default_rng(SEED)
    out = {**_header(), "cases": np.array(json.dumps(FUNCTIONAL_CASES, sort_keys=True))}
    for name, case in FUNCTIONAL_CASES.items():
        fn, scalar = FUNCTIONAL_FNS[name], _scalar_of(FUNCTIONAL_FNS[name])
        xs = [np.asarray(rng.standard_normal(shape) * 0.8) for shape in case["inputs"]]
        inputs = tuple(torch.from_numpy(x) for x in xs)
        value = fn(*inputs)
        values = value if isinstance(value, tuple) else (value,)
        v_out = [np.asarray(rng.standard_normal(tuple(o.shape))) for o in values]
        v_in = [np.asarray(rng.standard_normal(x.shape)) for x in xs]
        for k, x in enumerate(xs):
            out[f"{name}__x{k}"] = x
            out[f"{name}__v_in{k}"] = v_in[k]
        for i, v in enumerate(v_out):
            out[f"{name}__v_out{i}"] = v
        arg = inputs if case["tuple"] else inputs[0]

        def pack(vs, is_tuple):
            ts = tuple(torch.from_numpy(v) for v in vs)
            return ts if is_tuple else ts[0]
        results = {
            "value": value,
            "jacobian": AF.jacobian(fn, arg),
            "hessian": AF.hessian(scalar, arg),
            "vjp": AF.vjp(fn, arg, pack(v_out, isinstance(value, tuple))),
            "jvp": AF.jvp(fn, arg, pack(v_in, case["tuple"])),
            "hvp": AF.hvp(scalar, arg, pack(v_in, case["tuple"])),
            "vhp": AF.vhp(scalar, arg, pack(v_in, case["tuple"])),
        }
        out[f"{name}__structure"] = np.array(json.dumps(
            {call: _structure(res) for call, res in results.items()}, sort_keys=True))
        for call, res in results.items():
            _flatten(res, f"{name}__{call}", out)
    return out


def main(out_dir: Path | str = HERE) -> list[Path]:
    """Write all golden files into ``out_dir``; return their paths."""
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        "optimizers.npz": make_optimizers(),
        "schedulers.npz": make_schedulers(),
        "clip_grad_norm.npz": make_clip_grad_norm(),
        "batchnorm1d.npz": make_batchnorm1d(),
        "cross_entropy.npz": make_cross_entropy(),
        "softmax.npz": make_softmax(),
        "losses.npz": make_losses(),
        "activations.npz": make_activations(),
        "layer_norm.npz": make_layer_norm(),
        "functional.npz": make_functional(),
    }
    paths = []
    for filename, arrays in contents.items():
        path = out_dir / filename
        np.savez_compressed(path, **arrays)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in main(sys.argv[1] if len(sys.argv) > 1 else HERE):
        print(written)
