"""The worker's samplers: random and TPE draw each trial from (seed, trials finished), so a
study that lost a trial to a dead process and went on in a new one draws what it would have."""
import pytest

from tensorgrad.search.space import LogUniform, Uniform
from tensorgrad.search.worker import StageSpec, make_sampler


def _objective(trial):
    eta = trial.suggest_float("eta", 1e-3, 1e-1, log=True)
    lam = trial.suggest_float("lam", 0.0, 1.0)
    return (lam - 0.3) ** 2 + abs(eta - 0.01)


def _spec(sampler):
    return StageSpec(objective=None, space={"eta": LogUniform(1e-3, 1e-1), "lam": Uniform(0, 1)},
                     study_name="s", storage=None, trials=12, sampler=sampler, seed=7,
                     sampler_options={"n_startup_trials": 3} if sampler == "tpe" else {})


def _study(optuna, sampler):
    return optuna.create_study(sampler=sampler)


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_a_study_continued_by_a_new_sampler_after_a_lost_trial_draws_the_same_trials(
        optuna, kind):
    """Uninterrupted: 12 trials with one sampler. Interrupted: 5 trials, a sixth left failed
    (its process died), then a new sampler (a new worker process) re-runs the sixth with its
    parameters and draws the rest. The finished trials are the same, TPE's model-based draws
    (after its 3 startup trials) included."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = _spec(kind)
    whole = _study(optuna, make_sampler(spec, (7, 0, 0)))
    whole.optimize(_objective, n_trials=12)

    cut = _study(optuna, make_sampler(spec, (7, 0, 0)))
    cut.optimize(_objective, n_trials=5)
    lost = cut.ask()
    _objective(lost)
    cut.tell(lost, state=optuna.trial.TrialState.FAIL)
    cut.sampler = make_sampler(spec, (7, 0, 0))  # the next process's worker
    cut.enqueue_trial(lost.params)
    cut.optimize(_objective, n_trials=7)

    def finished(study):
        return [(t.params, t.value) for t in study.trials
                if t.state == optuna.trial.TrialState.COMPLETE]
    assert finished(cut) == finished(whole)
    assert len({t.params["eta"] for t in whole.trials}) == 12  # the draws differ trial to trial
