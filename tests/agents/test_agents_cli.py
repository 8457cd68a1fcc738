"""Subprocess smoke tests of the ``poser`` command with tiny budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TINY_ARGS = [
    "n_timesteps=200",
    "encoder=hashed",
    "learning_starts=50",
    "buffer_size=500",
    "batch_size=16",
    "eval_episodes=3",
    "log_window=50",
    "policy_kwargs={net_arch: [16]}",
]


def poser(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "poser_agents", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run = root / "run"
    r = poser(
        "train",
        "--algo",
        "dqn",
        "--seed",
        "0",
        "--run-dir",
        str(run),
        "--no-progress",
        "--hyperparams",
        *TINY_ARGS,
    )
    assert r.returncode == 0, r.stderr
    assert "run folder:" in r.stdout and "| dqn |" in r.stdout
    return run


def test_train_writes_a_run_folder(cli_run):
    assert (cli_run / "model.zip").is_file() and (cli_run / "eval.json").is_file()


def test_evaluate_prints_the_table_with_baselines(cli_run):
    r = poser(
        "evaluate",
        str(cli_run),
        "--episodes",
        "3",
        "--compare",
        "random,oracle",
        "--trajectories",
        "1",
    )
    assert r.returncode == 0, r.stderr
    assert "| dqn |" in r.stdout and "| random |" in r.stdout and "| oracle |" in r.stdout
    assert json.loads((cli_run / "eval.json").read_text())["episodes"] == 3
    assert (cli_run / "trajectories.png").is_file()


def test_run_orchestrates_one_prompt(cli_run, tmp_path):
    out = tmp_path / "result.png"
    r = poser(
        "run", str(cli_run), "--prompt", "Draw two red circles on the left.", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert out.is_file() and "success=" in r.stdout and "command 1:" in r.stdout


def test_benchmark_writes_tables_and_curves(tmp_path):
    out = tmp_path / "bench"
    r = poser(
        "benchmark",
        "--algos",
        "dqn,random,best-single,oracle",
        "--seeds",
        "2",
        "--timesteps",
        "120",
        "--episodes",
        "3",
        "--out",
        str(out),
        "--no-progress",
        "--hyperparams",
        *TINY_ARGS[1:],
    )
    assert r.returncode == 0, r.stderr
    md = (out / "results.md").read_text()
    for name in ("| dqn |", "| random |", "| oracle |", "| best-single (single:"):
        assert name in md
    res = json.loads((out / "results.json").read_text())
    assert res["rows"]["dqn"]["seeds"] == 2 and res["rows"]["dqn"]["episodes"] == 6
    assert (out / "results.csv").is_file() and (out / "learning_curves.png").is_file()


def test_errors_name_the_bad_value(tmp_path):
    r = poser("train", "--algo", "dqm", "--run-dir", str(tmp_path / "x"))
    assert (
        r.returncode == 2
        and "Unknown algorithm 'dqm'" in r.stderr
        and "Did you mean 'dqn'" in r.stderr
    )
    r = poser("train", "--env", "ImagePoser-v7", "--run-dir", str(tmp_path / "y"))
    assert r.returncode == 2 and "Unknown env id 'ImagePoser-v7'" in r.stderr
    r = poser("train", "--run-dir", str(tmp_path / "z"), "--hyperparams", "n_timestep=10")
    assert (
        r.returncode == 2
        and "Unknown key(s) ['n_timestep']" in r.stderr
        and "n_timesteps" in r.stderr
    )
    r = poser("evaluate", str(tmp_path / "missing"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = poser("benchmark", "--algos", "dqn,ppoo", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "Unknown algorithm 'ppoo'" in r.stderr


def test_two_train_processes_into_one_run_folder_one_is_refused_the_other_intact(tmp_path):
    run = tmp_path / "shared"
    args = [
        sys.executable,
        "-m",
        "poser_agents",
        "train",
        "--seed",
        "0",
        "--run-dir",
        str(run),
        "--no-progress",
        "--no-eval",
        "--hyperparams",
        *TINY_ARGS,
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], outs
    err = outs[codes.index(2)][1]
    # Refused by the lock while the other trains, or (if it started after the other ended)
    # by the emptiness check: either way at once, in one line, and it wrote nothing.
    assert (
        "being written by another poser process" in err or "already exists and is not empty" in err
    ), err
    assert (
        "Traceback" not in err
        and len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    )
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and meta["timesteps_done"] == 200
    lines = (run / "episodes.csv").read_text().splitlines()
    assert sum(line.startswith("timestep,") for line in lines) == 1  # one header: one writer
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[1]) for r in rows] == list(range(1, len(rows) + 1))
    assert sum(int(r[3]) for r in rows) == int(rows[-1][0])  # each step counted once
    assert (run / "model.zip").is_file() and not list(run.glob("*.tmp*"))


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    r = poser("train", "--run-dir", str(tmp_path / "r"), "--threads", "0")
    assert r.returncode == 2 and "argument --threads: expected an integer >= 1, got 0" in r.stderr
    r = poser(
        "train",
        "--run-dir",
        str(tmp_path / "r"),
        "--hyperparams",
        "learning_rate=fast",
        "encoder=hashed",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] == [
        "error: Argument 'learning_rate' of dqn (DQN) must be a number or a callable, got str 'fast'."
    ]
    assert not (tmp_path / "r").exists()
