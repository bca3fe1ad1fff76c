"""Outputs never touch the repository: every script writes under the untracked runs/ folder, and
only `python -m experiments.reproduce --publish` copies evidence into experiments/results/.

Each test runs its commands in a fresh repository holding this checkout's files (committed there,
so `git status --porcelain` lists whatever a command added or changed)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import common
from tests.data.conftest import FILES, make_batch, py3_pickle
from tests.experiments.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
       "-c", "commit.gpgsign=false"]


def git(repo, *args) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True,
                          timeout=60).stdout


@pytest.fixture
def fresh(tmp_path) -> Path:
    """A new repository with this checkout's tracked and new (not ignored) files, committed."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True, timeout=60).stdout
    repo = tmp_path / "repo"
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "snapshot")
    return repo


def run(repo, *args, timeout=300):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop(common.ENV_VAR, None)
    env.pop("PYTHONPATH", None)  # the fresh repository's own packages, from its root
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=timeout)


def status(repo) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


@pytest.fixture(scope="module")
def cifar_5005(tmp_path_factory) -> Path:
    """A CIFAR-10 root whose training batches hold 1,001 images each: enough for split (b)'s
    5,000 validation images, so a study runs in its full (not --quick) mode."""
    folder = tmp_path_factory.mktemp("cifar_5005") / "cifar-10-batches-py"
    folder.mkdir()
    for number, name in enumerate(FILES[:6], start=1):
        data, labels = make_batch(number, 1001 if number <= 5 else 20)
        (folder / name).write_bytes(py3_pickle({b"batch_label": b"batch", b"labels": labels,
                                                b"data": data, b"filenames": []}))
    (folder / "batches.meta").write_bytes(py3_pickle(
        {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog",
                          b"frog", b"horse", b"ship", b"truck"]}))
    return folder.parent


MAIN_JOB = ["experiments.k_layer_bn", "--layers", "3", "--bn", "--seeds", "1", "--no-progress"]


def test_the_main_job_in_quick_mode_changes_no_tracked_file(fresh, tiny_cifar):
    proc = run(fresh, *MAIN_JOB, "--quick", "--data", tiny_cifar)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert status(fresh) == ""
    assert (fresh / "runs" / "quick" / "k_layer_bn" / "results.json").is_file()


def test_the_main_job_in_full_mode_changes_no_tracked_file(fresh, cifar_5005):
    proc = run(fresh, *MAIN_JOB, "--n-s", "1", "--cycles", "1", "--data", cifar_5005)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert status(fresh) == ""
    results = json.loads((fresh / "runs" / "k_layer_bn" / "results.json").read_text())
    assert results["quick"] is False
    assert f"output:  {fresh / 'runs' / 'k_layer_bn'}" in proc.stdout


def test_the_benchmark_changes_no_tracked_file(fresh):
    proc = run(fresh, "benchmarks.benchmark", "--quick", "--no-torch")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert status(fresh) == ""
    assert (fresh / "runs" / "benchmark" / "results.json").is_file()


def test_no_journal_or_lock_file_is_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True, timeout=60).stdout.split()
    assert [f for f in tracked if ".journal" in f] == []
    assert "/runs/" in (REPO / ".gitignore").read_text().split()


def fake_study(folder: Path, test_acc=0.4321, repo: Path | None = None) -> dict:
    """A full run's outputs of S4 as a study writes them (from the code of `repo`, as
    results.json records it), plus the search's journal and locks (which are never evidence)."""
    folder.mkdir(parents=True)
    row = common.result_row("3-layer with BN (1 seed)", {"train": 0.6, "val": 0.5,
                                                         "test": test_acc}, {"test": 0.532})
    results = {"study": "S4", "name": "k_layer_bn", "title": "Deeper networks",
               "command": "python -m experiments.k_layer_bn --layers 3 --bn --seeds 1",
               "config": {}, "seed": 0, "quick": False, "data": None,
               "versions": common.versions(), "code": common.code_trees(repo or REPO),
               "started": "2026-01-01T00:00:00+00:00",
               "wall_time_s": 61.0, "rows": [row], "runs": [], "plots": ["3layer_bn_curves.png"],
               "table": "table.md"}
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "table.md").write_text("# S4. Deeper networks\n")
    (folder / "3layer_bn_curves.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    for name in ("study.journal", "study.journal.claim", "study.journal.workers"):
        (folder / name).write_text("lock")
    return results


def test_reproduce_writes_its_report_under_runs(fresh):
    fake_study(fresh / "runs" / "k_layer_bn")
    proc = run(fresh, "experiments.reproduce", "--reuse", "--only", "S4", "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert status(fresh) == ""
    assert "3-layer with BN (1 seed)" in (fresh / "runs" / "RESULTS.md").read_text()


def stamp_published(repo: Path) -> str:
    """Record the repository's code in every published study's results.json and commit that
    (as if they had run from it); returns the new HEAD commit."""
    from experiments.reproduce import STUDIES
    code = common.code_trees(repo)
    for name, _, _, _ in STUDIES:
        path = repo / "experiments" / "results" / name / "results.json"
        if path.is_file():
            path.write_text(json.dumps({**json.loads(path.read_text()), "code": code}))
    git(repo, "commit", "-q", "-am", "published results from this code")
    return git(repo, "rev-parse", "HEAD").strip()


def test_publish_copies_the_evidence_and_rewrites_results_md(fresh):
    snapshot = git(fresh, "rev-parse", "HEAD").strip()
    head = stamp_published(fresh)
    published = fresh / "experiments" / "results" / "k_layer_bn"
    old = {p.name for p in published.iterdir()}
    fake_study(fresh / "runs" / "k_layer_bn", repo=fresh)
    state = fresh / "runs" / "k_layer_bn" / "state"   # the run state is never published
    state.mkdir()
    (state / "manifest.json").write_text("{}")
    (state / "0123456789abcdef.json").write_text("{}")
    benchmark = {"command": "python -m benchmarks.benchmark", "rows": []}
    (fresh / "runs" / "benchmark").mkdir()
    (fresh / "runs" / "benchmark" / "results.json").write_text(json.dumps(benchmark))
    proc = run(fresh, "experiments.reproduce", "--reuse", "--only", "S4", "--publish",
               "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {p.name for p in published.iterdir()} == {"results.json", "table.md",
                                                     "3layer_bn_curves.png"} != old
    for name in ("results.json", "table.md", "3layer_bn_curves.png"):
        assert (published / name).read_bytes() == (fresh / "runs" / "k_layer_bn"
                                                   / name).read_bytes()
    benchmark_published = fresh / "experiments" / "results" / "benchmark" / "results.json"
    assert json.loads(benchmark_published.read_text()) == benchmark
    changed = {line[3:] for line in status(fresh).splitlines()}
    assert "experiments/RESULTS.md" in changed
    assert all(c in ("experiments/RESULTS.md", "experiments/results/benchmark/results.json")
               or c.startswith("experiments/results/k_layer_bn/") for c in changed), changed
    report = (fresh / "experiments" / "RESULTS.md").read_text()
    assert "3-layer with BN (1 seed)" in report and "43.2" in report
    assert "## S1. " in report and "Not run" not in report  # the others: their published runs
    assert f"from commit {head}." in report   # HEAD, and the commit each part ran from
    assert f"Commits the parts ran from: commit {snapshot} (" in report
    assert f"commit {head} (k_layer_bn)" in report
    assert "/work/" not in report and "/tmp/" not in report  # no private path


def test_publish_refuses_quick_runs_and_a_dirty_tree(fresh):
    before = status(fresh)
    proc = run(fresh, "experiments.reproduce", "--quick", "--publish")
    assert proc.returncode == 2 and "--publish" in proc.stderr.strip().splitlines()[-1]
    fake_study(fresh / "runs" / "k_layer_bn")
    with open(fresh / "README.md", "a") as fh:
        fh.write("\nan edit\n")
    proc = run(fresh, "experiments.reproduce", "--reuse", "--only", "S4", "--publish")
    assert proc.returncode == 2
    assert "uncommitted" in proc.stderr and "README.md" in proc.stderr
    assert status(fresh) == before + " M README.md\n"


def test_publish_refuses_parts_that_ran_from_other_code(fresh):
    results_path = fresh / "runs" / "k_layer_bn" / "results.json"
    results = fake_study(results_path.parent, repo=fresh)
    # a published part that records no tree hashes (run before they were recorded)
    published = fresh / "experiments" / "results" / "two_layer_cyclic" / "results.json"
    published.write_text(json.dumps({k: v for k, v in json.loads(published.read_text()).items()
                                     if k != "code"}))
    git(fresh, "commit", "-q", "-am", "a published part from before tree hashes")
    before = status(fresh)
    proc = run(fresh, "experiments.reproduce", "--reuse", "--only", "S4", "--publish")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--publish refused" in proc.stderr
    assert "two_layer_cyclic (experiments/results/two_layer_cyclic/results.json): records no " \
           "tree hashes" in proc.stderr
    assert "k_layer_bn (" not in proc.stderr  # this one ran from HEAD's code
    assert status(fresh) == before + "" and "published" not in proc.stdout
    stamp_published(fresh)
    before = status(fresh)
    # a part that ran from another tensorgrad/ than HEAD's (a commit since changed it)
    results["code"]["trees"]["tensorgrad"] = "0123456789abcdef" * 2 + "01234567"
    results_path.write_text(json.dumps(results))
    proc = run(fresh, "experiments.reproduce", "--reuse", "--only", "S4", "--publish")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert ("k_layer_bn (runs/k_layer_bn/results.json): ran from commit "
            in proc.stderr), proc.stderr
    assert "whose code differs from HEAD's: tensorgrad (0123456789ab there, " in proc.stderr
    assert "models" not in proc.stderr.split("k_layer_bn (")[1]  # only the tree that differs
    assert status(fresh) == before  # nothing published, RESULTS.md untouched
