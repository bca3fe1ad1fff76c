"""python -m experiments.search end to end on a tiny CIFAR-10: two workers, outputs, resume."""
import json

import pytest

from tests.data.conftest import write_cifar
from tests.experiments.conftest import run_module

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_cifar")
    write_cifar(root / "cifar-10-batches-py")
    return root


def test_search_command_runs_two_workers_writes_outputs_and_continues(tiny_cifar, tmp_path,
                                                                      optuna):
    spec = tmp_path / "lam.json"
    spec.write_text(json.dumps({
        "space": {"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
                  "optimizer": {"type": "choice", "values": ["sgd", "adagrad"]}},
        "fixed": {"split": "a", "widths": "16"}, "sampler": "random", "trials": 4,
        "refine": {"trials": 2, "factor": 4}}))
    out = tmp_path / "out"
    args = ["--space", spec, "--workers", "2", "--quick", "--data", tiny_cifar, "--out", out,
            "--no-progress", "--pruner", "none"]
    proc = run_module("search", *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    trials = results["trials"]
    assert [t["stage"] for t in trials] == [0] * 4 + [1] * 2
    assert all(t["state"] == "COMPLETE" for t in trials)
    assert len({t["worker"] for t in trials}) >= 1 and results["search"]["workers"] == 2
    assert results["best"]["value"] == max(t["value"] for t in trials)
    assert 0 < results["search"]["span_s"] <= results["wall_time_s"]
    final = results["runs"][0]
    assert final["data"]["split"] == "b" and "test_acc" in final["final"]
    assert final["config"]["lam"] == results["best"]["params"]["lam"]
    table = (out / "table.md").read_text()
    assert "Top 10" in table and "| rank | trial | lam | optimizer | val % |" in table
    for name in ("params.png", "best_so_far.png", "final_curves.png"):
        assert name in results["plots"] and (out / name).read_bytes().startswith(PNG)
    assert (out / "study.journal").exists()

    again = run_module("search", *args, "--no-final")      # the same study: nothing to redo
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert " COMPLETE:" not in again.stdout and "done: 4 complete" in again.stdout
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 6


def test_search_command_rejects_unknown_options(tiny_cifar, tmp_path, optuna):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"learning_rate": {"type": "loguniform", "low": 1e-3,
                                                  "high": 1e-1}}))
    proc = run_module("search", "--space", spec, "--quick", "--data", tiny_cifar, "--out",
                      tmp_path / "o", "--trials", "2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "['learning_rate'] are not training options" in proc.stderr
