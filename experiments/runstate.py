"""A study's run state: what lets the same command, run again, continue where it stopped.

    state = RunState.open(out / "state", flags, command, restart=False)  # ResumeRefused?
    state.check_batch(specs)        # the runs of one run_all call, as recorded before
    state.result(spec)              # a finished run's stored result, or None
    checkpoint, result = state.paths(spec)   # the run's fit checkpoint and result files
    store(result, checkpoint, run)  # a finished run's result, atomically (JSON), in any process

Every run is keyed by its Spec (`spec_key`: a sha256 of all its fields, seed included), so
the files of two runs can never be mixed up. `manifest.json` records the study's flags, the
code's commit and the runs of each run_all call; a resume whose flags, code or runs differ is
refused (ResumeRefused), naming the difference, and `--restart` removes the state instead.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from tensorgrad.atomic import write_text

__all__ = ["RunState", "ResumeRefused", "store", "as_stored", "spec_key", "code_version",
           "COMMIT_ENV", "IGNORED"]

FORMAT = "tensorgrad-run-state-1"
COMMIT_ENV = "TENSORGRAD_TEST_COMMIT"  # test-only: stands for the code's commit
# flags that change how a study runs or reports, never its numbers: not compared on resume
IGNORED = ("progress", "restart", "checkpoint_every", "checkpoint_seconds")
REPO = Path(__file__).resolve().parent.parent


class ResumeRefused(ValueError):
    """The run state on disk belongs to another command or another version of the code."""


def _plain(obj):
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def _dumps(obj, sort_keys=True) -> str:
    """JSON that reads back to the same numbers (floats by repr; NaN and infinities kept)."""
    return json.dumps(obj, sort_keys=sort_keys, default=_plain)


def as_stored(result: dict) -> dict:
    """A run's result as `store` keeps it and a resume reads it back (tuples as lists, numpy
    numbers as Python's), so that a study sees the same whether a run was resumed or not."""
    return json.loads(_dumps(result, sort_keys=False))


def spec_fields(spec) -> dict:
    return json.loads(_dumps(dataclasses.asdict(spec)))


def spec_key(spec) -> str:
    """A stable name for a run: the first 16 hex digits of a sha256 over all its Spec's fields."""
    return hashlib.sha256(_dumps(dataclasses.asdict(spec)).encode()).hexdigest()[:16]


def code_version() -> str:
    """The code's version: git HEAD of the repository, else a sha256 of the tensorgrad/,
    models/ and experiments/*.py files ($TENSORGRAD_TEST_COMMIT stands for it in tests)."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=30)
        if proc.returncode == 0 and proc.stdout.strip():
            return "commit " + proc.stdout.strip()
    digest = hashlib.sha256()
    files = sorted([*(REPO / "tensorgrad").rglob("*.py"), *(REPO / "models").rglob("*.py"),
                    *(REPO / "experiments").glob("*.py")])
    for path in files:
        digest.update(os.fspath(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return "source sha256 " + digest.hexdigest()[:16]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _differences(then: dict, now: dict, what=_flag) -> list[str]:
    return [f"{what(k)} {then.get(k)!r} then, {now.get(k)!r} now"
            for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k)]


def store(path, checkpoint, result: dict) -> None:
    """Keep a finished run's result at path; its checkpoint is then no longer needed."""
    write_text(path, _dumps(result, sort_keys=False) + "\n")
    with contextlib.suppress(FileNotFoundError):
        os.remove(checkpoint)


class RunState:
    """The run state in `folder` (see the module docstring)."""

    def __init__(self, folder: Path, manifest: dict, resumed: bool):
        self.folder, self.manifest, self.resumed = folder, manifest, resumed
        self.batches = 0   # run_all calls seen in this process
        self.t0 = time.perf_counter()
        self.before = float(manifest.get("elapsed_s", 0.0))  # seconds of earlier invocations

    @classmethod
    def open(cls, folder, flags: dict, command: str, restart: bool = False) -> RunState:
        """The state of a study run with `flags` (its parsed arguments): fresh (--restart
        removes what is there) or resumed; ResumeRefused if it was made by other flags or
        another version of the code."""
        folder = Path(folder)
        flags = {k: v for k, v in json.loads(_dumps(flags)).items() if k not in IGNORED}
        code = code_version()
        if restart and folder.exists():
            shutil.rmtree(folder)
        path = folder / "manifest.json"
        if path.exists():
            manifest = json.loads(path.read_text())
            problems = _differences(manifest.get("flags", {}), flags)
            if manifest.get("code") != code:
                problems.insert(0, f"the code changed: {manifest.get('code')} then, {code} now")
            if problems:
                raise ResumeRefused(
                    f"cannot resume from the run state in {folder}: it was made by "
                    f"`{manifest.get('command')}` and differs from this run: "
                    + "; ".join(problems)
                    + ". Run the same command as then to resume, or add --restart to start "
                      "over (removing that state)")
            return cls(folder, manifest, resumed=True)
        folder.mkdir(parents=True, exist_ok=True)
        state = cls(folder, {"format": FORMAT, "command": command, "flags": flags, "code": code,
                             "batches": [], "elapsed_s": 0.0}, resumed=False)
        state._write()
        return state

    def _write(self):
        write_text(self.folder / "manifest.json", json.dumps(self.manifest, indent=1) + "\n")

    def elapsed(self) -> float:
        """Seconds spent on the study so far, earlier invocations included."""
        return self.before + time.perf_counter() - self.t0

    def check_batch(self, specs) -> None:
        """Record the runs of this process's next run_all call, or, resuming, check that they
        are those recorded (ResumeRefused naming the runs that differ)."""
        runs = [{"key": spec_key(s), "label": s.label, "fields": spec_fields(s)} for s in specs]
        index, self.batches = self.batches, self.batches + 1
        recorded = self.manifest["batches"]
        if index >= len(recorded):
            recorded.append(runs)
            self._write()
            return
        if [r["key"] for r in recorded[index]] == [r["key"] for r in runs]:
            return
        problems = []
        for i in range(max(len(recorded[index]), len(runs))):
            then = recorded[index][i] if i < len(recorded[index]) else None
            now = runs[i] if i < len(runs) else None
            if then is None or now is None:
                problems.append(f"run {i + 1} ({(then or now)['label']!r}) only "
                                f"{'now' if then is None else 'then'}")
            elif then["key"] != now["key"]:
                problems.append(f"run {i + 1} ({now['label']!r}): " + ", ".join(
                    _differences(then["fields"], now["fields"], str)))
        raise ResumeRefused(
            f"cannot resume from the run state in {self.folder}: the study's runs differ from "
            f"those it recorded (the code or its data changed): " + "; ".join(problems[:5])
            + ". Add --restart to start over (removing that state)")

    def paths(self, spec) -> tuple[Path, Path]:
        """(fit checkpoint, stored result) of spec's run."""
        key = spec_key(spec)
        return self.folder / f"{key}.ckpt", self.folder / f"{key}.json"

    def result(self, spec) -> dict | None:
        """The stored result of spec's finished run, or None."""
        checkpoint, path = self.paths(spec)
        if not path.exists():
            return None
        result = json.loads(path.read_text())
        with contextlib.suppress(FileNotFoundError):  # a kill between storing and removing
            os.remove(checkpoint)
        return result

    def count_time(self) -> None:
        """Add this invocation's time so far to the manifest (a later resume reports the
        study's whole wall time)."""
        self.manifest["elapsed_s"] = self.elapsed()
        self.before, self.t0 = self.manifest["elapsed_s"], time.perf_counter()
        self._write()
