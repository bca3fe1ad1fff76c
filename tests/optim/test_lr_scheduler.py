"""Learning-rate schedules: the published formulas, PyTorch goldens, momentum cycling,
checkpoints."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import optim
from tensorgrad.optim import lr_scheduler as sched

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "schedulers.npz"


def make_sgd(lrs=(0.5,), **kwargs):
    groups = [{"params": [tg.tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0], **kwargs)


def lr_sequence(scheduler, n_steps):
    """lr of group 0 at updates 0..n_steps (construction gives update 0)."""
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(n_steps):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
        assert scheduler.optimizer.param_groups[0]["lr"] == lrs[-1]
    return np.array(lrs)


# ---- CyclicLR against the course's formula ---------------------------------------------------


def course_cyclical_lr(t, eta_min, eta_max, n_s, amplitude=1.0):
    """eta_t of the course: up from eta_min to eta_max over n_s updates, then back down."""
    cycle = t // (2 * n_s)
    if 2 * cycle * n_s <= t <= (2 * cycle + 1) * n_s:
        return eta_min + (t - 2 * cycle * n_s) / n_s * (eta_max - eta_min) * amplitude
    return (
        eta_max * amplitude
        + eta_min * (1 - amplitude)
        - (t - (2 * cycle + 1) * n_s) / n_s * (eta_max - eta_min) * amplitude
    )


ETA_MIN, ETA_MAX, N_S = 1e-5, 1e-1, 6


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_follows_the_formula_for_two_cycles(mode):
    gamma = 0.97

    def amplitude(t):
        if mode == "triangular":
            return 1.0
        if mode == "triangular2":
            return 0.5 ** (t // (2 * N_S))  # halves every cycle
        return gamma**t

    s = sched.CyclicLR(
        make_sgd(), base_lr=ETA_MIN, max_lr=ETA_MAX, step_size_up=N_S, mode=mode, gamma=gamma
    )
    lrs = lr_sequence(s, 4 * N_S)
    for t, lr in enumerate(lrs):
        assert lr == pytest.approx(
            course_cyclical_lr(t, ETA_MIN, ETA_MAX, N_S, amplitude(t)), rel=1e-12
        )
    # the named points of both cycles: first, middle of the climb, peak, last
    for cycle in range(2):
        first, middle, peak = 2 * N_S * cycle, 2 * N_S * cycle + N_S // 2, 2 * N_S * cycle + N_S
        assert lrs[first] == pytest.approx(ETA_MIN, rel=1e-12)
        assert lrs[middle] == pytest.approx(
            ETA_MIN + (ETA_MAX - ETA_MIN) / 2 * amplitude(middle), rel=1e-12
        )
        assert lrs[peak] == pytest.approx(
            ETA_MIN + (ETA_MAX - ETA_MIN) * amplitude(peak), rel=1e-12
        )
    assert lrs[4 * N_S] == pytest.approx(ETA_MIN, rel=1e-12)
    if mode == "triangular":
        assert lrs.max() == pytest.approx(ETA_MAX) and lrs[N_S] == pytest.approx(lrs[3 * N_S])


def test_cyclic_lr_with_unequal_up_and_down_steps():
    s = sched.CyclicLR(make_sgd(), base_lr=0.0, max_lr=1.0, step_size_up=2, step_size_down=4)
    expected = [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    np.testing.assert_allclose(lr_sequence(s, 12), expected, atol=1e-15)


def test_cyclic_lr_custom_scale_fn_per_cycle_and_per_iteration():
    s = sched.CyclicLR(
        make_sgd(), base_lr=0.0, max_lr=1.0, step_size_up=2, scale_fn=lambda x: 1.0 / x
    )
    np.testing.assert_allclose(
        lr_sequence(s, 8), [0, 0.5, 1, 0.5, 0, 0.25, 0.5, 0.25, 0], atol=1e-15
    )
    s = sched.CyclicLR(
        make_sgd(),
        base_lr=0.0,
        max_lr=1.0,
        step_size_up=2,
        scale_fn=lambda t: 0.5**t,
        scale_mode="iterations",
    )
    np.testing.assert_allclose(
        lr_sequence(s, 3), [0, 0.5 * 0.5, 1.0 * 0.25, 0.5 * 0.125], atol=1e-15
    )


def test_cyclic_lr_sets_base_lr_at_construction_and_leaves_momentum_alone_by_default():
    opt = make_sgd(lrs=(0.7,))
    sched.StepLR(opt, step_size=5)  # an earlier schedule left initial_lr=0.7 in the group
    s = sched.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3)
    assert opt.param_groups[0]["lr"] == 0.01 and s.get_last_lr() == [0.01]
    lr_sequence(s, 5)
    assert opt.param_groups[0]["momentum"] == 0.0  # unlike PyTorch's default cycle_momentum=True
    adagrad = optim.Adagrad([tg.tensor(np.zeros(2), requires_grad=True)])
    s = sched.CyclicLR(adagrad, base_lr=0.01, max_lr=0.1, step_size_up=3)
    assert lr_sequence(s, 3)[-1] == pytest.approx(0.1)
    with pytest.raises(
        ValueError, match="cycle_momentum=True needs an optimizer with 'momentum' or 'betas'"
    ):
        sched.CyclicLR(adagrad, base_lr=0.01, max_lr=0.1, cycle_momentum=True)


def test_cyclic_momentum_moves_against_the_lr_for_sgd_and_adam_beta1():
    opt = make_sgd(momentum=0.9)
    s = sched.CyclicLR(
        opt,
        base_lr=0.0,
        max_lr=1.0,
        step_size_up=2,
        cycle_momentum=True,
        base_momentum=0.8,
        max_momentum=0.9,
    )
    momentums = [opt.param_groups[0]["momentum"]]
    for _ in range(4):
        s.step()
        momentums.append(opt.param_groups[0]["momentum"])
    np.testing.assert_allclose(momentums, [0.9, 0.85, 0.8, 0.85, 0.9])
    adam = optim.Adam([tg.tensor(np.zeros(2), requires_grad=True)], betas=(0.5, 0.99))
    sched.CyclicLR(adam, base_lr=0.0, max_lr=1.0, step_size_up=2, cycle_momentum=True).step()
    assert adam.param_groups[0]["betas"] == (pytest.approx(0.85), 0.99)


def test_cyclic_lr_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode must be"):
        sched.CyclicLR(make_sgd(), 0.1, 1.0, mode="triangle")
    with pytest.raises(ValueError, match="step sizes must be positive"):
        sched.CyclicLR(make_sgd(), 0.1, 1.0, step_size_up=0)
    with pytest.raises(ValueError, match="expected 2 values for base_lr"):
        sched.CyclicLR(make_sgd(lrs=(0.1, 0.2)), [0.1], 1.0)
    with pytest.raises(TypeError, match="expected a tensorgrad Optimizer"):
        sched.CyclicLR("sgd", 0.1, 1.0)


# ---- the other schedules against their formulas --------------------------------------------


def test_step_lr():
    s = sched.StepLR(make_sgd(lrs=(0.8,)), step_size=3, gamma=0.5)
    expected = [0.8 * 0.5 ** (t // 3) for t in range(10)]
    np.testing.assert_allclose(lr_sequence(s, 9), expected, rtol=1e-15)


def test_cosine_annealing_lr_including_past_t_max():
    base, eta_min, t_max = 0.3, 0.01, 8
    s = sched.CosineAnnealingLR(make_sgd(lrs=(base,)), T_max=t_max, eta_min=eta_min)
    lrs = lr_sequence(s, 2 * t_max + 3)
    expected = [
        eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
        for t in range(len(lrs))
    ]
    np.testing.assert_allclose(lrs, expected, rtol=1e-14)
    assert (
        lrs[0] == base
        and lrs[t_max] == pytest.approx(eta_min)
        and lrs[t_max // 2] == pytest.approx((base + eta_min) / 2)
    )


def one_cycle_reference(t, total, max_lr, pct, div, final_div, strategy):
    """Smith & Topin's 1cycle: warm up to max_lr until update pct*total - 1, then anneal down."""
    initial, minimum = max_lr / div, max_lr / div / final_div
    anneal = (
        (lambda a, b, x: b + (a - b) * (1 + math.cos(math.pi * x)) / 2)
        if strategy == "cos"
        else (lambda a, b, x: a + (b - a) * x)
    )
    peak = pct * total - 1
    if t <= peak:
        return anneal(initial, max_lr, t / peak)
    return anneal(max_lr, minimum, (t - peak) / (total - 1 - peak))


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_lr(strategy):
    total = 30
    s = sched.OneCycleLR(
        make_sgd(),
        max_lr=0.2,
        total_steps=total,
        pct_start=0.4,
        div_factor=20.0,
        final_div_factor=50.0,
        anneal_strategy=strategy,
    )
    lrs = lr_sequence(s, total - 1)
    expected = [one_cycle_reference(t, total, 0.2, 0.4, 20.0, 50.0, strategy) for t in range(total)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert (
        lrs[0] == pytest.approx(0.01)
        and lrs[11] == pytest.approx(0.2)
        and lrs[-1] == pytest.approx(0.0002)
    )


def test_one_cycle_three_phase_and_epoch_arguments():
    s = sched.OneCycleLR(
        make_sgd(),
        max_lr=1.0,
        epochs=2,
        steps_per_epoch=5,
        pct_start=0.3,
        three_phase=True,
        anneal_strategy="linear",
        div_factor=10.0,
        final_div_factor=10.0,
    )
    lrs = lr_sequence(s, 9)
    # up 0.1 -> 1 over updates 0..2, down to 0.1 over 2..4, then to 0.01 over 4..9
    expected = [0.1, 0.55, 1.0, 0.55, 0.1, 0.082, 0.064, 0.046, 0.028, 0.01]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_one_cycle_errors():
    with pytest.raises(ValueError, match="either total_steps or both epochs and steps_per_epoch"):
        sched.OneCycleLR(make_sgd(), max_lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        sched.OneCycleLR(make_sgd(), max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="zero length"):
        sched.OneCycleLR(make_sgd(), max_lr=0.1, total_steps=10, pct_start=0.1)
    s = sched.OneCycleLR(make_sgd(), max_lr=0.1, total_steps=4)
    for _ in range(4):
        s.step()
    with pytest.raises(ValueError, match="tried to step 5 times; the schedule has total_steps=4"):
        s.step()


def test_constant_and_lambda_lr():
    s = sched.ConstantLR(make_sgd(lrs=(0.6,)), factor=0.5, total_iters=3)
    np.testing.assert_allclose(lr_sequence(s, 5), [0.3, 0.3, 0.3, 0.6, 0.6, 0.6])
    s = sched.LambdaLR(make_sgd(lrs=(0.6, 0.2)), [lambda t: 0.5**t, lambda t: t + 1])
    for _ in range(3):
        s.step()
    assert s.get_last_lr() == [pytest.approx(0.6 * 0.125), pytest.approx(0.2 * 4)]


# ---- PyTorch goldens ------------------------------------------------------------------------


def golden_cases():
    with np.load(GOLDEN) as f:
        return sorted(json.loads(str(f["cases"])).items())


@pytest.mark.parametrize("name, case", golden_cases(), ids=[n for n, _ in golden_cases()])
def test_matches_pytorch_golden(name, case):
    with np.load(GOLDEN) as f:
        expected_lr = f[f"{name}__lr"]
        expected_momentum = f[f"{name}__momentum"] if f"{name}__momentum" in f.files else None
    groups = [
        {"params": [tg.tensor(np.zeros(1), requires_grad=True)], "lr": lr}
        for lr in case.get("group_lrs", [0.1])
    ]
    opt_name = case.get("optimizer", "SGD")
    opt = getattr(optim, opt_name)(groups, **case.get("optimizer_kwargs", {"lr": 0.1}))
    kwargs = dict(case["kwargs"])
    s = getattr(sched, case["scheduler"])(opt, **kwargs)

    def momentum_now():
        return [g["betas"][0] if opt_name == "Adam" else g["momentum"] for g in opt.param_groups]

    lrs, momentums = [s.get_last_lr()], [momentum_now()]
    for _ in range(case["steps"]):
        s.step()
        lrs.append(s.get_last_lr())
        momentums.append(momentum_now())
    np.testing.assert_allclose(lrs, expected_lr, rtol=1e-12, atol=1e-15)
    if expected_momentum is not None:
        np.testing.assert_allclose(momentums, expected_momentum, rtol=1e-12)


def test_golden_file_covers_every_scheduler_and_cyclic_mode():
    cases = dict(golden_cases())
    assert {c["scheduler"] for c in cases.values()} >= {
        "CyclicLR",
        "StepLR",
        "CosineAnnealingLR",
        "OneCycleLR",
    }
    assert {
        c["kwargs"].get("mode", "triangular")
        for c in cases.values()
        if c["scheduler"] == "CyclicLR"
    } == {"triangular", "triangular2", "exp_range"}


# ---- get_last_lr, state_dict, resuming ---------------------------------------------------------


def test_get_last_lr_is_a_copy_per_group():
    opt = make_sgd(lrs=(0.1, 0.2))
    s = sched.StepLR(opt, step_size=1, gamma=0.5)
    last = s.get_last_lr()
    assert last == [0.1, 0.2]
    last[0] = 99.0
    s.step()
    assert s.get_last_lr() == [0.05, 0.1] and [g["lr"] for g in opt.param_groups] == [0.05, 0.1]


@pytest.mark.parametrize(
    "make",
    [
        lambda opt: sched.CyclicLR(
            opt, 0.01, 0.1, step_size_up=3, mode="triangular2", cycle_momentum=True
        ),
        lambda opt: sched.OneCycleLR(opt, max_lr=0.1, total_steps=20, cycle_momentum=True),
        lambda opt: sched.StepLR(opt, step_size=2, gamma=0.3),
        lambda opt: sched.CosineAnnealingLR(opt, T_max=7, eta_min=0.001),
        lambda opt: sched.ConstantLR(opt, factor=0.25, total_iters=9),
    ],
    ids=["cyclic", "onecycle", "step", "cosine", "constant"],
)
def test_state_dict_round_trip_continues_the_schedule(make):
    opt = make_sgd(lrs=(0.1,), momentum=0.9)
    s = make(opt)
    for _ in range(7):
        s.step()
    opt_state, sched_state = opt.state_dict(), s.state_dict()
    assert "optimizer" not in sched_state

    opt2 = make_sgd(lrs=(0.5,), momentum=0.5)
    s2 = make(opt2)
    s2.load_state_dict(sched_state)
    opt2.load_state_dict(opt_state)
    assert s2.get_last_lr() == s.get_last_lr()
    for _ in range(5):
        s.step()
        s2.step()
        assert s2.get_last_lr() == s.get_last_lr()
        assert opt2.param_groups[0]["momentum"] == opt.param_groups[0]["momentum"]


def test_lambda_state_dict_keeps_callable_objects_state_but_not_functions():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, t):
            return self.rate**t

    s = sched.LambdaLR(make_sgd(lrs=(1.0, 1.0)), [Decay(0.5), lambda t: 1.0])
    state = s.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.5}, None]
    other = sched.LambdaLR(make_sgd(lrs=(1.0, 1.0)), [Decay(0.9), lambda t: 1.0])
    other.load_state_dict(state)
    other.step()
    assert other.get_last_lr() == [0.5, 1.0]


def test_resuming_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(make_sgd(), step_size=2, last_epoch=4)
    opt = make_sgd(lrs=(0.8,))
    sched.StepLR(opt, step_size=2)
    resumed = sched.StepLR(opt, step_size=2, gamma=0.5, last_epoch=4)
    assert resumed.get_last_lr() == [0.8 * 0.5**2]  # update 5


def test_step_after_adding_a_param_group_is_a_clear_error():
    opt = make_sgd()
    s = sched.StepLR(opt, step_size=2)
    opt.add_param_group({"params": [tg.tensor(np.zeros(1), requires_grad=True)]})
    with pytest.raises(
        ValueError, match="built for 1 parameter groups, but the optimizer now has 2"
    ):
        s.step()
