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


def build_scheduler(opt, spec):
    """The scheduler a golden case describes (a SequentialLR's parts built first, in order)."""
    kwargs = dict(spec["kwargs"])
    if spec["scheduler"] == "SequentialLR":
        kwargs["schedulers"] = [build_scheduler(opt, part) for part in spec["schedulers"]]
    return getattr(sched, spec["scheduler"])(opt, **kwargs)


def golden_cases():
    with np.load(GOLDEN) as f:
        return sorted(json.loads(str(f["cases"])).items())


@pytest.mark.parametrize("name, case", golden_cases(), ids=[n for n, _ in golden_cases()])
def test_matches_pytorch_golden(name, case):
    with np.load(GOLDEN) as f:
        expected_lr = f[f"{name}__lr"]
        expected_momentum = f[f"{name}__momentum"] if f"{name}__momentum" in f.files else None
        metrics = f[f"{name}__metrics"] if "metrics" in case else None
    groups = [
        {"params": [tg.tensor(np.zeros(1), requires_grad=True)], "lr": lr}
        for lr in case.get("group_lrs", [0.1])
    ]
    opt_name = case.get("optimizer", "SGD")
    opt = getattr(optim, opt_name)(groups, **case.get("optimizer_kwargs", {"lr": 0.1}))
    s = build_scheduler(opt, case)

    def momentum_now():
        return [g["betas"][0] if opt_name == "Adam" else g["momentum"] for g in opt.param_groups]

    lrs, momentums = [s.get_last_lr()], [momentum_now()]
    for k in range(case["steps"]):
        if metrics is not None:
            s.step(float(metrics[k]))
        elif "epochs_per_unit" in case:
            s.step((k + 1) / case["epochs_per_unit"])
        else:
            s.step()
        lrs.append(s.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == lrs[-1]
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
        "MultiStepLR",
        "ExponentialLR",
        "LinearLR",
        "SequentialLR",
        "ReduceLROnPlateau",
        "CosineAnnealingWarmRestarts",
    }
    plateau = [c["kwargs"] for c in cases.values() if c["scheduler"] == "ReduceLROnPlateau"]
    assert {(k.get("mode", "min"), k.get("threshold_mode", "rel")) for k in plateau} == {
        ("min", "rel"), ("min", "abs"), ("max", "rel"), ("max", "abs")
    }
    for name in ("multistep", "exponential", "linear_warmup", "sequential", "plateau_min_rel",
                 "warm_restarts_mult"):  # several hundred steps, several groups
        assert cases[name]["steps"] >= 300 and len(cases[name]["group_lrs"]) >= 2
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


# ---- MultiStepLR, ExponentialLR, LinearLR, CosineAnnealingWarmRestarts against their formulas --


def test_multi_step_lr_decays_at_each_milestone_and_twice_at_a_repeated_one():
    s = sched.MultiStepLR(make_sgd(lrs=(1.0, 0.1)), milestones=[5, 2, 5], gamma=0.5)
    assert s.milestones == [2, 5, 5]  # sorted, as PyTorch's closed form reads them
    lrs = lr_sequence(s, 7)
    np.testing.assert_allclose(lrs, [1, 1, 0.5, 0.5, 0.5, 0.125, 0.125, 0.125], rtol=1e-15)
    assert s.get_last_lr()[1] == pytest.approx(0.0125)
    with pytest.raises(ValueError, match="milestones must be integers"):
        sched.MultiStepLR(make_sgd(), milestones=[1.5])


def test_exponential_lr():
    s = sched.ExponentialLR(make_sgd(lrs=(0.5, 2.0)), gamma=0.9)
    lrs = lr_sequence(s, 30)
    np.testing.assert_allclose(lrs, 0.5 * 0.9 ** np.arange(31), rtol=1e-14)
    assert s.get_last_lr()[1] == pytest.approx(2.0 * 0.9**30, rel=1e-14)


@pytest.mark.parametrize("start, end, total", [(0.1, 1.0, 4), (1.0, 0.0, 5), (0.5, 0.25, 2)])
def test_linear_lr_goes_from_start_to_end_factor_then_stays(start, end, total):
    s = sched.LinearLR(make_sgd(lrs=(0.2,)), start_factor=start, end_factor=end, total_iters=total)
    lrs = lr_sequence(s, total + 3)
    expected = [0.2 * (start + (end - start) * min(t, total) / total) for t in range(total + 4)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-14, atol=1e-17)
    assert lrs[-1] == pytest.approx(0.2 * end)


def test_linear_lr_rejects_bad_factors():
    with pytest.raises(ValueError, match="start_factor must be in"):
        sched.LinearLR(make_sgd(), start_factor=0.0)
    with pytest.raises(ValueError, match="end_factor must be in"):
        sched.LinearLR(make_sgd(), end_factor=1.5)
    with pytest.raises(ValueError, match="total_iters must be a positive integer"):
        sched.LinearLR(make_sgd(), total_iters=0)


def sgdr(t_cur, t_i, base, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def test_warm_restarts_restart_after_t0_then_t0_times_t_mult():
    base, eta_min = 0.4, 0.01
    s = sched.CosineAnnealingWarmRestarts(make_sgd(lrs=(base,)), T_0=3, T_mult=2, eta_min=eta_min)
    lrs = lr_sequence(s, 25)
    # cycles of 3, 6 and 12 steps start at updates 0, 3 and 9, then 21
    starts, lengths = [0, 3, 9, 21], [3, 6, 12, 24]
    expected = []
    for t in range(26):
        i = max(k for k, st in enumerate(starts) if st <= t)
        expected.append(sgdr(t - starts[i], lengths[i], base, eta_min))
    np.testing.assert_allclose(lrs, expected, rtol=1e-14)
    assert lrs[3] == lrs[9] == lrs[21] == base


def test_warm_restarts_fractional_epochs_as_pytorch_documents():
    s = sched.CosineAnnealingWarmRestarts(make_sgd(lrs=(1.0,)), T_0=2, T_mult=2)
    s.step(0.5)
    assert s.get_last_lr() == [pytest.approx(sgdr(0.5, 2, 1.0, 0.0))] and s.last_epoch == 0
    s.step(3.5)  # the second cycle (epochs 2..6) at 1.5 of its 4
    assert s.get_last_lr() == [pytest.approx(sgdr(1.5, 4, 1.0, 0.0))] and s.T_i == 4
    s.step()  # an ordinary step after a jump: one further than floor(3.5)
    assert s.last_epoch == 4 and s.T_cur == pytest.approx(2.5)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        s.step(-1)
    with pytest.raises(ValueError, match="T_0 must be a positive integer"):
        sched.CosineAnnealingWarmRestarts(make_sgd(), T_0=0)
    with pytest.raises(ValueError, match="T_mult must be an integer >= 1"):
        sched.CosineAnnealingWarmRestarts(make_sgd(), T_0=2, T_mult=1.5)


# ---- ReduceLROnPlateau ---------------------------------------------------------------------------


def plateau_lrs(s, metrics):
    out = []
    for m in metrics:
        s.step(m)
        out.append(s.get_last_lr()[0])
        assert s.optimizer.param_groups[0]["lr"] == out[-1]
    return out


def test_plateau_leaves_the_lr_at_construction_and_reduces_after_patience():
    opt = make_sgd(lrs=(1.0,))
    s = sched.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    assert s.get_last_lr() == [1.0] and opt.param_groups[0]["lr"] == 1.0
    # best 3 at step 1; steps 2, 3, 4 are no better: the third bad step (> patience) reduces
    assert plateau_lrs(s, [3.0, 3.0, 4.0, 3.0, 2.0, 2.5, 2.5, 2.5]) == [
        1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25
    ]


def test_plateau_threshold_rel_and_abs_and_mode_max():
    # rel: 0.9999 * best must be beaten; 9.9995 is not below 10 * (1 - 1e-4) = 9.999
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0,)), patience=0)
    assert plateau_lrs(s, [10.0, 9.9995, 9.0]) == [1.0, pytest.approx(0.1), pytest.approx(0.1)]
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0,)), patience=0, threshold=0.5,
                                threshold_mode="abs")
    assert plateau_lrs(s, [10.0, 9.6, 9.4]) == [1.0, pytest.approx(0.1), pytest.approx(0.1)]
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0,)), mode="max", patience=0, factor=0.5)
    assert plateau_lrs(s, [0.5, 0.6, 0.6, 0.59, 0.7]) == [1, 1, 0.5, 0.25, 0.25]
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0,)), mode="max", patience=0, factor=0.5,
                                threshold=0.05, threshold_mode="abs")
    assert plateau_lrs(s, [0.5, 0.54, 0.56]) == [1, 0.5, 0.5]


def test_plateau_cooldown_min_lr_and_eps():
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0,)), patience=0, factor=0.5, cooldown=2)
    # a reduction, then two steps in which bad steps do not count
    assert plateau_lrs(s, [1.0, 2.0, 2.0, 2.0, 2.0]) == [1, 0.5, 0.5, 0.5, 0.25]
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0, 1.0)), patience=0, factor=0.1,
                                min_lr=[0.05, 0.0])
    for m in [1.0, 2.0, 2.0]:
        s.step(m)
    assert s.get_last_lr() == [0.05, pytest.approx(0.01)]
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(3e-8,)), patience=0, factor=0.5)
    # 3e-8 -> 1.5e-8 is a reduction larger than eps=1e-8; 1.5e-8 -> 7.5e-9 is not: skipped
    assert plateau_lrs(s, [1.0, 2.0, 2.0]) == [3e-8, 1.5e-8, 1.5e-8]


def test_plateau_takes_tensors_and_arrays_and_checks_its_arguments():
    s = sched.ReduceLROnPlateau(make_sgd(lrs=(1.0,)), patience=0)
    s.step(tg.tensor(np.array(2.0)))
    s.step(np.float32(3.0))
    assert s.best == 2.0 and s.num_bad_epochs == 0 and s.get_last_lr() == [pytest.approx(0.1)]
    with pytest.raises(ValueError, match="factor must be < 1"):
        sched.ReduceLROnPlateau(make_sgd(), factor=1.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        sched.ReduceLROnPlateau(make_sgd(), mode="best")
    with pytest.raises(ValueError, match="threshold_mode must be 'rel' or 'abs'"):
        sched.ReduceLROnPlateau(make_sgd(), threshold_mode="relative")
    with pytest.raises(ValueError, match="expected 2 values for min_lr"):
        sched.ReduceLROnPlateau(make_sgd(lrs=(0.1, 0.2)), min_lr=[0.0])


# ---- SequentialLR -----------------------------------------------------------------------------


def test_sequential_hands_over_at_each_milestone_starting_the_next_at_its_update_0():
    opt = make_sgd(lrs=(1.0,))
    warmup = sched.LinearLR(opt, start_factor=0.25, total_iters=3)
    decay = sched.ExponentialLR(opt, gamma=0.5)
    steps = sched.StepLR(opt, step_size=2, gamma=0.1)
    s = sched.SequentialLR(opt, [warmup, decay, steps], milestones=[3, 6])
    assert opt.param_groups[0]["initial_lr"] == 1.0
    np.testing.assert_allclose(
        lr_sequence(s, 9), [0.25, 0.5, 0.75, 1.0, 0.5, 0.25, 1.0, 1.0, 0.1, 0.1], rtol=1e-15
    )
    assert (warmup.last_epoch, decay.last_epoch, steps.last_epoch) == (2, 2, 3)


def test_sequential_with_a_milestone_at_0_starts_with_the_second():
    opt = make_sgd(lrs=(1.0,))
    s = sched.SequentialLR(
        opt, [sched.ConstantLR(opt, factor=0.5), sched.ExponentialLR(opt, gamma=0.5)], [0]
    )
    np.testing.assert_allclose(lr_sequence(s, 2), [1.0, 0.5, 0.25])


def test_sequential_checks_its_schedulers():
    opt = make_sgd()
    a = sched.ExponentialLR(opt, gamma=0.9)
    with pytest.raises(ValueError, match="expected 1 milestones"):
        sched.SequentialLR(opt, [a, sched.ExponentialLR(opt, gamma=0.9)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        sched.SequentialLR(opt, [a, sched.ReduceLROnPlateau(opt)], milestones=[3])
    with pytest.raises(ValueError, match="belongs to another optimizer"):
        sched.SequentialLR(opt, [a, sched.ExponentialLR(make_sgd(), gamma=0.9)], [3])
    with pytest.raises(ValueError, match="at least one scheduler"):
        sched.SequentialLR(opt, [], [])


# ---- resuming the new schedules mid-way ----------------------------------------------------------


def _sequential(opt):
    parts = [
        sched.LinearLR(opt, start_factor=0.1, total_iters=4),
        sched.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2),
        sched.MultiStepLR(opt, milestones=[2, 4]),
    ]
    return sched.SequentialLR(opt, parts, milestones=[4, 12])


NEW_SCHEDULES = {
    "multistep": lambda opt: sched.MultiStepLR(opt, milestones=[3, 9, 9, 14], gamma=0.5),
    "exponential": lambda opt: sched.ExponentialLR(opt, gamma=0.8),
    "linear": lambda opt: sched.LinearLR(opt, start_factor=0.2, end_factor=0.9, total_iters=13),
    "warm_restarts": lambda opt: sched.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2,
                                                                   eta_min=0.001),
    "sequential": _sequential,
    "plateau": lambda opt: sched.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1,
                                                   threshold=0.05),
}
METRICS = np.random.default_rng(3).uniform(0.5, 1.0, 30)  # mostly no progress: many reductions


def _advance(s, k):
    if isinstance(s, sched.ReduceLROnPlateau):
        s.step(METRICS[k])
    else:
        s.step()


@pytest.mark.parametrize("through_checkpoint", [False, True], ids=["dict", "checkpoint"])
@pytest.mark.parametrize("name", sorted(NEW_SCHEDULES))
def test_new_schedules_resume_mid_schedule_with_the_same_lrs(name, through_checkpoint, tmp_path):
    make = NEW_SCHEDULES[name]
    opt = make_sgd(lrs=(0.1, 0.3), momentum=0.9)
    s = make(opt)
    for k in range(11):
        _advance(s, k)
    state = {"optimizer": opt.state_dict(), "scheduler": s.state_dict()}
    assert "optimizer" not in state["scheduler"]
    if through_checkpoint:  # what fit saves: arrays and JSON, no pickle
        from tensorgrad.checkpoint import load_checkpoint, save_checkpoint

        save_checkpoint(tmp_path / "s.ckpt", state)
        state = load_checkpoint(tmp_path / "s.ckpt")

    opt2 = make_sgd(lrs=(0.7, 0.7), momentum=0.9)
    s2 = make(opt2)
    s2.load_state_dict(state["scheduler"])
    opt2.load_state_dict(state["optimizer"])
    assert s2.get_last_lr() == s.get_last_lr()
    lrs, lrs2 = [], []
    for k in range(11, 30):
        _advance(s, k)
        _advance(s2, k)
        lrs.append(s.get_last_lr())
        lrs2.append(s2.get_last_lr())
        assert [g["lr"] for g in opt2.param_groups] == lrs2[-1]
    assert lrs2 == lrs
    assert len({tuple(lr) for lr in lrs}) > 1  # the schedule still moves after the resume
