"""Hyper-parameter search on Optuna: grid, random (coarse-to-fine) and TPE, parallel, resumable.

    from tensorgrad.search import LogUniform, Int, run_search

    def objective(params, trial):            # module-level: worker processes import it
        ...build a model from params...
        history = fit(model, opt, loader, val_data=val,
                      callbacks=[trial.pruning_callback("val_acc")])
        return history.last("val_acc")

    result = run_search(objective, {"lam": LogUniform(1e-2, 8e-2), "depth": Int(3, 9)},
                        storage="runs/study.journal", study_name="r0", sampler="tpe",
                        trials=20, workers=2)

Optuna is an optional extra (pip install -e ".[search]"), imported only when a search runs.
"""
from .report import (
                     best_record,
                     plot_best_so_far,
                     plot_params,
                     span_seconds,
                     top_table,
                     trial_records,
)
from .runner import Refine, SearchResult, fine_space, run_search
from .space import (
                     Choice,
                     Int,
                     LogUniform,
                     Uniform,
                     grid_points,
                     grid_size,
                     grid_values,
                     load_space,
                     narrow,
                     space_from_dict,
                     space_to_dict,
                     suggest,
)
from .storage import (
                     STORAGE_RETRY_SECONDS,
                     CorruptJournal,
                     StorageError,
                     StorageSpec,
                     StorageUnavailable,
)
from .worker import PRUNERS, SAMPLERS, PruningCallback, SearchTrial

__all__ = [
    "LogUniform", "Uniform", "Int", "Choice", "grid_values", "grid_points", "grid_size",
    "suggest", "narrow", "space_to_dict", "space_from_dict", "load_space",
    "run_search", "Refine", "SearchResult", "fine_space", "StorageSpec",
    "STORAGE_RETRY_SECONDS", "StorageError", "StorageUnavailable", "CorruptJournal",
    "SearchTrial", "PruningCallback", "SAMPLERS", "PRUNERS",
    "trial_records", "best_record", "span_seconds", "top_table", "plot_params",
    "plot_best_so_far",
]
