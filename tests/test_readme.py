"""The README's examples run as written: its python blocks, the modules its commands run, and its
search over a JSON space (on a tiny CIFAR-10, in --quick mode)."""
import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

from tests.experiments.conftest import tiny_cifar  # noqa: F401  (a fixture, used by name)
from tests.search.conftest import optuna  # noqa: F401  (a fixture, used by name)

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_readme_pytorch_style_loop_runs_on_fixture_data(tiny_cifar, monkeypatch,  # noqa: F811
                                                        capsys):
    block, = re.findall(r"```py\n(.*?)```", README.read_text(), flags=re.S)
    assert len(block.strip().splitlines()) <= 25
    monkeypatch.setenv("TENSORGRAD_DATA", os.fspath(tiny_cifar))
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.count("validation accuracy") == 3


def test_every_module_the_readme_runs_exists():
    flat = " ".join(README.read_text().split())
    modules = {m.rstrip(".") for m in re.findall(r"python -m ([\w.]+)", flat)} - {"experiments"}
    assert {"benchmarks.benchmark", "experiments.k_layer_bn"} <= modules
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    assert missing == []


def test_readme_json_space_search_runs(tiny_cifar, optuna, tmp_path):  # noqa: F811
    text = README.read_text()
    flat = " ".join(text.split())
    example = re.search(r"or a JSON file, e\.g\. `(\{.*?\})`", flat).group(1)
    (tmp_path / "my_space.json").write_text(json.dumps(json.loads(example)))
    command = next(line for line in text.splitlines()
                   if line.startswith("python -m experiments.search") and "my_space.json" in line)
    argv = shlex.split(command.split("#")[0])[3:]
    argv[argv.index("--trials") + 1] = "6"   # the README's 40, fewer for time
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONPATH=os.fspath(README.parent))
    env.pop("TENSORGRAD_DATA", None)
    proc = subprocess.run([sys.executable, "-m", "experiments.search", *argv, "--quick",
                           "--data", os.fspath(tiny_cifar), "--out", os.fspath(tmp_path / "out"),
                           "--no-progress", "--no-final"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = json.loads((tmp_path / "out" / "results.json").read_text())["trials"]
    assert len(trials) == 6 and all(t["state"] != "FAIL" for t in trials), trials
    assert {"lam", "depth"} <= set(trials[0]["params"])
