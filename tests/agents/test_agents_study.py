"""The study harness: study files, cells, resumable results folders, reports, bad input."""

from __future__ import annotations

import json

import pytest
import yaml

from poser_agents import study as st
from poser_agents.study import (
    StudyError,
    load_study,
    parse_study,
    plan_cells,
    run_study,
    study_names,
)

TINY = {
    "description": "A tiny study for the tests.",
    "envs": ["ImagePoser-Easy-v0", "ImagePoser-NotThere-v9"],
    "agents": ["dqn", "router", "best-single", "random"],
    "variants": [
        {"label": "steps-3", "x": 3, "env_kwargs": {"max_steps": 3}},
        {"label": "steps-4", "x": 4, "env_kwargs": {"max_steps": 4}},
    ],
    "hyperparams": {
        "encoder": "hashed",
        "learning_starts": 50,
        "buffer_size": 500,
        "batch_size": 16,
    },
    "seeds": [0],
    "n_timesteps": 120,
    "episodes": 4,
    "select_episodes": 2,
    "plots": ["success_vs_x", "success_vs_cost", "learning_curves"],
}


def write(tmp_path, data, name="tiny"):
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_study_parses_and_plans_cells_in_both_modes():
    names = study_names()
    assert {"rl_vs_heuristics", "state", "critic", "extractor", "caps", "cost", "encoders"} <= set(
        names
    )
    for name in names:
        for quick in (False, True):
            study = load_study(name, quick=quick)
            cells, _ = plan_cells(study)
            assert cells, name
            assert len({c["id"] for c in cells}) == len(cells), f"{name}: cell ids collide"
    quick = load_study("rl_vs_heuristics", quick=True)
    assert quick.seeds == (0,) and quick.n_timesteps < load_study("rl_vs_heuristics").n_timesteps


def test_cells_cross_envs_variants_agents_and_seeds():
    study = parse_study({**TINY, "seeds": [0, 1]}, "tiny")
    cells, skipped = plan_cells(study)
    assert skipped == ["ImagePoser-NotThere-v9"]
    by_agent = {a: [c for c in cells if c["agent"] == a] for a in study.agents}
    assert len(by_agent["dqn"]) == 2 * 2  # variants x seeds
    assert len(by_agent["random"]) == 2 * 2  # random depends on its seed
    assert (
        len(by_agent["router"]) == 2 and len(by_agent["best-single"]) == 2
    )  # deterministic: first seed only
    assert all(c["hyperparams"] == {} for c in cells if not c["learned"])
    limited = parse_study({**TINY, "agents": ["router", {"oracle": ["ImagePoser-v1"]}]}, "tiny")
    assert {c["agent"] for c in plan_cells(limited)[0]} == {"router"}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seedz": 3}, r"unknown key 'seedz'\. Did you mean 'seeds'\?"),
        ({"envs": "ImagePoser-v0"}, "envs must be a non-empty list of env ids"),
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"episodes": 0}, "episodes must be an integer >= 1"),
        (
            {"variants": [{"label": "a", "env_kwarg": {}}]},
            r"variant 0: unknown key 'env_kwarg'\. Did you mean 'env_kwargs'\?",
        ),
        ({"variants": [{"label": "a"}, {"label": "a"}]}, "variant labels must be unique"),
        ({"variants": [{"label": "a", "x": "big"}]}, "x must be a number"),
        ({"plots": ["pie"]}, r"unknown plot\(s\) \['pie'\]"),
        ({"quick": {"seed": 1}}, r"quick: unknown key 'seed'\. Did you mean 'seeds'\?"),
        ({"split": "dev"}, "split must be 'train', 'test' or 'all'"),
    ],
)
def test_bad_study_files_get_clear_errors(change, match):
    with pytest.raises(StudyError, match=match):
        parse_study({**TINY, **change}, "tiny")


def test_unknown_study_and_agent_names():
    with pytest.raises(
        StudyError, match=r"Unknown study 'critc'\. Did you mean 'critic'\?.*Known studies"
    ):
        load_study("critc")
    with pytest.raises(StudyError, match="agent 'dqm'.*Did you mean 'dqn'"):
        plan_cells(parse_study({**TINY, "agents": ["dqm"]}, "tiny"))
    assert st.main(["run", "critc"]) == 2


def test_a_tiny_study_runs_reports_and_resumes(tmp_path, monkeypatch):
    bad = {
        **TINY,
        "variants": [*TINY["variants"], {"label": "broken", "env_kwargs": {"max_steps": 0}}],
    }
    path = write(tmp_path, bad)
    res = run_study(path, out=tmp_path / "out", progress=False, log=None)
    folder = tmp_path / "out" / "tiny"
    assert res["skipped_envs"] == ["ImagePoser-NotThere-v9"]
    # 3 variants x (dqn, router, best-single, random) on the one registered env
    assert len(res["rows"]) == 2 * 4 and len(res["failed"]) == 4
    assert all("max_steps" in f["error"] for f in res["failed"].values())
    row = res["rows"]["ImagePoser-Easy-v0|steps-3|best-single"]
    assert row["picked"] and row["picked"][0].startswith("always:") and row["episodes"] == 4
    assert res["rows"]["ImagePoser-Easy-v0|steps-3|router"]["metrics"]["steps"]["mean"] <= 3
    assert res["rows"]["ImagePoser-Easy-v0|steps-4|dqn"]["runs"], (
        "learned cells keep their run folder"
    )
    report = (folder / "report.md").read_text()
    assert (
        "ImagePoser-NotThere-v9 is not registered" in report
        and "## Failed cells" in report
        and "| dqn |" in report
    )
    for png in (
        "ImagePoser-Easy-v0_success_vs_x.png",
        "ImagePoser-Easy-v0_success_vs_cost.png",
        "ImagePoser-Easy-v0_learning_curves.png",
    ):
        assert (folder / png).is_file()
    saved = json.loads((folder / "results.json").read_text())
    assert saved["version"] and saved["rows"]["ImagePoser-Easy-v0|steps-4|router"]["config"][
        "env_kwargs"
    ] == {"max_steps": 4}

    # Re-running runs only the failed cells again: finished cells are never recomputed.
    ran = []
    real = st.run_cell
    monkeypatch.setattr(st, "run_cell", lambda cell, out: ran.append(cell["id"]) or real(cell, out))
    run_study(path, out=tmp_path / "out", progress=False, log=None)
    assert sorted(ran) == sorted(res["failed"]), "only failed cells are retried"


def test_a_results_folder_from_another_version_is_refused_and_kept(tmp_path):
    data = {**TINY, "agents": ["router"], "variants": None, "envs": ["ImagePoser-Easy-v0"]}
    data.pop("variants")
    path = write(tmp_path, data)
    run_study(path, out=tmp_path, progress=False, log=None)
    manifest = tmp_path / "tiny" / "study.json"
    m = json.loads(manifest.read_text())
    m["version"] = "0.0.1"
    manifest.write_text(json.dumps(m))
    cells = sorted((tmp_path / "tiny" / "cells").iterdir())
    with pytest.raises(
        StudyError, match=r"another image-poser version \('0\.0\.1'.*finished cells are kept"
    ):
        run_study(path, out=tmp_path, progress=False, log=None)
    assert sorted((tmp_path / "tiny" / "cells").iterdir()) == cells
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(StudyError, match="not a study results folder"):
        st._claim_folder(tmp_path / "other", load_study(path), False)


def test_workers_run_cells_in_parallel_processes(tmp_path):
    data = {**TINY, "agents": ["router", "random"], "envs": ["ImagePoser-Easy-v0"], "seeds": [0, 1]}
    one = run_study(write(tmp_path, data, "a"), out=tmp_path, progress=False, log=None)
    two = run_study(write(tmp_path, data, "b"), out=tmp_path, workers=2, progress=False, log=None)
    strip = lambda rows: {k: (v["metrics"], v["seeds"]) for k, v in rows.items()}  # noqa: E731
    assert strip(one["rows"]) == strip(two["rows"]), "parallel cells give the same numbers"


@pytest.mark.parametrize("state", ["image", "text-no-progress"])
def test_the_state_study_presets_are_valid_sb3_observations(state):
    import gymnasium as gym
    from stable_baselines3.common.env_checker import check_env

    from poser_env.wrappers import EncodeObservation

    env = EncodeObservation(gym.make("ImagePoser-v0"), state=state, encoder="hashed")
    check_env(env)
    obs, _ = env.reset(seed=0)
    if state == "image":
        assert set(obs) == {"image", "progress", "action_mask"}
    else:
        assert set(obs) == {"command", "remaining", "action_mask"}


def test_final_metrics_carry_the_critics_own_view_next_to_the_independent_judge():
    import gymnasium as gym

    from poser_agents.baselines import make_baseline
    from poser_agents.evaluate import run_episodes

    exact = gym.make("ImagePoser-v1")
    recs, _ = run_episodes(make_baseline("random", exact, 0), exact, 40, seed=0)
    assert all(r["critic_success"] == r["success"] for r in recs), (
        "an exact critic agrees with the judge"
    )
    noisy = gym.make("ImagePoser-v1", suite_kwargs={"critic_errors": 0.5})
    # The oracle succeeds often, so a wrong critic has successes to misjudge.
    recs_noisy, _ = run_episodes(make_baseline("oracle", noisy, 0), noisy, 40, seed=0)
    assert any(r["critic_success"] != r["success"] for r in recs_noisy), (
        "a wrong critic disagrees with the judge somewhere"
    )


def test_poser_study_command(tmp_path, capsys):
    from poser_agents.cli import main

    assert main(["study", "list"]) == 0
    assert "critic:" in capsys.readouterr().out
    assert main(["study", "run", "critc", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'critic'" in capsys.readouterr().err
    path = write(tmp_path, {**TINY, "agents": ["router"], "envs": ["ImagePoser-Easy-v0"]})
    assert main(["study", "run", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert (tmp_path / "o" / "tiny" / "report.md").is_file()
    assert main(["study", "report", str(path), "--out", str(tmp_path / "o")]) == 0


def test_a_report_of_an_unfinished_study_says_which_cells_are_missing(tmp_path):
    data = {**TINY, "agents": ["router", "random"], "envs": ["ImagePoser-Easy-v0"], "seeds": [0, 1]}
    path = write(tmp_path, data)
    study = load_study(path)
    folder = tmp_path / "tiny"
    st._claim_folder(folder, study, False)
    cells, _ = plan_cells(study)
    st.run_cell(cells[0], folder)  # one cell of six, as after an interruption
    res = st.write_report(study, folder)
    assert len(res["not_run"]) == len(cells) - 1
    assert (
        f"Partial: {len(cells) - 1} of {len(cells)} cells not run yet"
        in (folder / "report.md").read_text()
    )
