"""Behaviour of ImagePoser-v0 and its presets: API conformance, dynamics, errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env, data_equivalence

import poser_env
from poser_env import IDS, RewardConfig
from poser_env.components import Expert, ExpertResult, Task
from poser_env.envs.image_poser import PROGRESS_FIELDS, ImagePoserEnv, read_details
from poser_env.error import ConfigError, PromptParseError, UnknownNameError
from poser_env.suites import make_suite
from poser_env.suites.shapes.policies import OraclePolicy, RandomPolicy

ALL_IDS = sorted(IDS)
EXAMPLE_PROMPT = (
    "Draw three red circles on the left, then add a big blue square to their right "
    "and make the background striped."
)


def rollout(env, seed: int, actions_seed: int = 0, max_steps: int = 50):
    """(obs, rewards, terminations, truncations, infos) of one episode under a seeded policy."""
    policy = RandomPolicy(actions_seed)
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for _ in range(max_steps):
        step = env.step(policy(env))
        out.append(step)
        if step[2] or step[3]:
            break
    return out


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_same_seed_gives_identical_episodes(env_id):
    a = rollout(gym.make(env_id), seed=123)
    b = rollout(gym.make(env_id), seed=123)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert data_equivalence(x, y), "episodes with the same seed differ"
    c = rollout(gym.make(env_id), seed=124)
    assert not data_equivalence(a[0][0]["prompt"], c[0][0]["prompt"]) or not data_equivalence(a, c)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_pickle_round_trip_preserves_state(env_id):
    env = gym.make(env_id)
    env.reset(seed=5)
    env.step(int(np.flatnonzero(env.unwrapped.action_masks())[0]))
    clone = pickle.loads(pickle.dumps(env))
    policy_a, policy_b = RandomPolicy(1), RandomPolicy(1)
    for _ in range(4):
        ra = env.step(policy_a(env))
        rb = clone.step(policy_b(clone))
        assert data_equivalence(ra, rb)
        if ra[2] or ra[3]:
            break


def test_import_and_make_do_not_import_torch():
    code = (
        "import sys, gymnasium as gym, poser_env\n"
        "env = gym.make('ImagePoser-v0'); env.reset(seed=0); env.step(0)\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'open_clip') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_prefixed_id_and_quickstart_prompt():
    env = gym.make("poser_env:ImagePoser-v0")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, info = env.reset(options={"prompt": EXAMPLE_PROMPT})
    assert read_details(info)["commands"] == [
        "draw three red circles on the left",
        "add a big blue square to their right",
        "make the background striped",
    ]
    assert obs["command"] == "draw three red circles on the left"
    assert obs["remaining"] == "add a big blue square to their right | make the background striped"
    assert obs["prompt"] == EXAMPLE_PROMPT


def test_spaces_and_observation_contents():
    env = gym.make("ImagePoser-v0")
    space = env.observation_space
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == 12
    assert space["image"].shape == (64, 64, 3) and space["image"].dtype == np.uint8
    assert space["progress"].shape == (len(PROGRESS_FIELDS),)
    for key in ("prompt", "command", "remaining", "feedback"):
        assert isinstance(space[key], gym.spaces.Text)
        assert space[key].contains("Add one more red circle, then (maybe) stop: 50% done!")
    obs, _ = env.reset(seed=3, options={"prompt": EXAMPLE_PROMPT})
    assert not obs["image"].any(), "the image is blank before the first expert call"
    np.testing.assert_array_equal(obs["action_mask"], [1] * 6 + [0] * 6)
    obs, *_ = env.step(5)  # generalist-xl draws
    assert obs["image"].any()
    assert obs["action_mask"].all()
    assert obs["progress"][PROGRESS_FIELDS.index("step")] == pytest.approx(1 / 6)
    assert obs["progress"][PROGRESS_FIELDS.index("has_image")] == 1.0


def test_image_size_is_configurable():
    env = gym.make("ImagePoser-v0", image_size=(40, 48))
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (40, 48, 3)
    env.step(5)
    obs, *_ = env.step(5)
    assert obs["image"].shape == (40, 48, 3) and obs["image"].dtype == np.uint8


def test_invalid_i2i_action_is_a_penalised_noop():
    env = gym.make("ImagePoser-v0", reward={"step_penalty": 0.0, "invalid_action_penalty": 0.3})
    obs0, _ = env.reset(seed=0, options={"prompt": EXAMPLE_PROMPT})
    obs, reward, term, trunc, info = env.step(6)  # object-adder with no image yet
    assert info["invalid_action"] == True  # noqa: E712  (a numpy bool)
    assert reward == pytest.approx(-0.3)
    assert not term and not trunc
    np.testing.assert_array_equal(obs["image"], obs0["image"])
    assert obs["command"] == obs0["command"]


@pytest.mark.parametrize("action", [12, -1, 2.5, "3", None])
def test_out_of_space_action_raises(action):
    env = gym.make("ImagePoser-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"not in the action space Discrete\(12\)"):
        env.unwrapped.step(action)


def test_step_before_reset_and_after_end_raise():
    env = ImagePoserEnv()
    with pytest.raises(ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    while True:
        *_, term, trunc, _ = env.step(5)
        if term or trunc:
            break
    with pytest.raises(ResetNeeded):
        env.step(5)


def test_accepted_command_advances_and_episode_terminates_with_metrics():
    env = ImagePoserEnv()
    env.reset(seed=0, options={"prompt": "Draw two red circles on the left."})
    oracle = OraclePolicy()
    for _ in range(6):
        obs, reward, term, trunc, info = env.step(oracle(env))
        if term or trunc:
            break
    assert term and not trunc
    final = info["final_metrics"]
    assert set(final) >= {"success", "alignment", "fidelity", "aesthetics", "steps", "total_cost"}
    assert final["episode_over"] and final["success"] and final["alignment"] == 1.0
    assert info["is_success"] == True  # noqa: E712
    assert obs["command"] == "" and obs["remaining"] == ""


class _Blank(Expert):
    """Always returns an empty white canvas: the critic rejects every command."""

    name, kind, cost = "blank", "t2i", 0.5

    def __call__(self, command, image, seed):
        return ExpertResult(np.full((128, 128, 3), 240, np.uint8), self.cost)


def _suite_with(*extra):
    from poser_env.suites.shapes.tasks import _PERFECT_I2I, _PERFECT_T2I

    suite = make_suite("shapes")
    suite.experts = (_PERFECT_T2I, _PERFECT_I2I, *extra)
    return suite


def test_command_is_dropped_after_max_attempts_then_truncated_at_max_steps():
    env = ImagePoserEnv(suite=_suite_with(_Blank()), max_attempts=2, max_steps=3)
    obs, info = env.reset(
        seed=0, options={"prompt": "Draw two red circles. Then make the background dotted."}
    )
    blank = env.expert_names.index("blank")
    _, _, term, trunc, info = env.step(blank)
    assert not info["accepted"] and info["attempt"] == 1 and not (term or trunc)
    obs, _, term, trunc, info = env.step(blank)
    assert info["dropped"] and info["commands_dropped"] == 1
    assert obs["command"] == "make the background dotted", "the next command becomes current"
    assert not (term or trunc)
    _, _, term, trunc, info = env.step(blank)
    assert trunc and not term, "max_steps=3 truncates"
    assert info["final_metrics"]["commands_dropped"] == 1
    assert not info["final_metrics"]["success"] and not info["is_success"]


def test_reflection_rewrites_a_failed_command():
    env = ImagePoserEnv(suite=_suite_with(_Blank()))
    env.reset(seed=0, options={"prompt": "Draw two red circles on the left."})
    obs, *_ = env.step(env.expert_names.index("blank"))
    assert obs["command"] == "add two more red circles"
    assert "Expected there are exactly two red circles; observed 0 red circles." in obs["feedback"]
    obs, _, term, _, info = env.step(env.expert_names.index("perfect-i2i"))
    assert info["accepted"] and term


@pytest.mark.parametrize("keep_best", [False, True])
def test_keep_best_decides_whether_a_worse_image_replaces_a_better_one(keep_best):
    env = ImagePoserEnv(suite=_suite_with(_Blank()), keep_best=keep_best)
    env.reset(
        seed=0,
        options={"prompt": "Draw two red circles on the left. Then make the background dotted."},
    )
    _, _, _, _, info = env.step(env.expert_names.index("perfect-t2i"))
    assert info["accepted"] and info["prompt_score"] == pytest.approx(2 / 3)
    good = env.current_image.copy()
    _, _, _, _, info = env.step(env.expert_names.index("blank"))
    if keep_best:
        assert not info["image_kept"] and info["prompt_score"] == pytest.approx(2 / 3)
        np.testing.assert_array_equal(env.current_image, good)
    else:
        assert info["image_kept"] and info["prompt_score"] == 0.0
        assert not np.array_equal(env.current_image, good)


class _Boom(Expert):
    name, kind, cost = "boom", "t2i", 1.0

    def __call__(self, command, image, seed):
        raise RuntimeError("CUDA out of memory (injected)")


class _BadShape(Expert):
    name, kind, cost = "bad-shape", "t2i", 1.0

    def __call__(self, command, image, seed):
        return ExpertResult(np.zeros((10, 10, 3), np.uint8), 1.0)


@pytest.mark.parametrize("bad", [_Boom(), _BadShape()])
def test_failing_expert_truncates_gracefully(bad):
    suite = make_suite("shapes")
    suite.experts = (*suite.experts, bad)
    env = ImagePoserEnv(
        suite=suite,
        reward={
            "failure_penalty": 2.0,
            "step_penalty": 0.0,
            "final_weight": 0.0,
            "success_bonus": 0.0,
        },
    )
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(12)
    assert trunc and not term
    assert reward == pytest.approx(-2.0)
    assert info["error_component"] == "expert"
    assert bad.name in info["error"]
    assert info["final_metrics"]["episode_over"]
    assert env.observation_space.contains(obs)


def test_failing_critic_truncates_gracefully():
    suite = make_suite("shapes")

    def broken(*args, **kwargs):
        raise TimeoutError("critic API timed out (injected)")

    suite.critic.judge = broken
    env = ImagePoserEnv(suite=suite)
    env.reset(seed=0)
    *_, term, trunc, info = env.step(5)
    assert trunc and info["error_component"] == "critic" and "timed out" in info["error"]


def test_render_rgb_array_draws_caption_under_image():
    env = gym.make("ImagePoser-v0", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(5)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[1] == 256
    assert frame.shape[0] > 256, "caption rows sit under the image"
    assert (frame[260:] < 128).any(), "caption text is drawn"


def test_reward_terms_follow_config():
    env = ImagePoserEnv(
        reward=RewardConfig(
            progress=0,
            command_bonus=0,
            drop_penalty=0,
            cost_weight=1.0,
            step_penalty=0,
            final_weight=0,
            success_bonus=0,
        )
    )
    env.reset(seed=0, options={"prompt": EXAMPLE_PROMPT})
    _, reward, *_, info = env.step(0)  # sketch-turbo costs 0.5 s
    assert reward == pytest.approx(-0.5)
    assert info["cost"] == 0.5


def test_editing_task_starts_from_source_image():
    env = gym.make("ImagePoser-Edit-v0")
    obs, info = env.reset(seed=1)
    assert info["task_kind"] == "editing"
    assert obs["image"].any()
    assert obs["action_mask"].all()


def test_user_source_image_for_editing():
    env = ImagePoserEnv()
    src_env = ImagePoserEnv(suite_kwargs={"editing_fraction": 1.0})
    src_env.reset(seed=2)
    image = src_env.current_image
    obs, info = env.reset(options={"prompt": "Make the background dotted.", "image": image})
    assert info["task_kind"] == "editing"
    np.testing.assert_array_equal(env.current_image, image)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"prompt": ""}, PromptParseError, "non-empty"),
        ({"prompt": "Draw three red circles \u2603"}, PromptParseError, "\u2603"),
        ({"prompt": "Draw a purple elephant"}, PromptParseError, "purple elephant"),
        ({"prompt": 42}, ConfigError, "must be a string, got int"),
        (
            {"prompt": "Make the background dotted.", "image": np.zeros((64, 64, 3), np.uint8)},
            ConfigError,
            r"\(128, 128, 3\) uint8.*got shape \(64, 64, 3\)",
        ),
        (
            {"prompt": "Make the background dotted.", "image": np.zeros((128, 128, 3), np.float32)},
            ConfigError,
            "dtype float32",
        ),
        ({"image": np.zeros((128, 128, 3), np.uint8)}, ConfigError, "needs options\\['prompt'\\]"),
        ({"promt": "x"}, ConfigError, "Unknown reset option"),
        ({"task": "not a task"}, ConfigError, "must be a poser_env.Task"),
    ],
)
def test_bad_reset_options_raise_clear_errors(options, error, match):
    env = ImagePoserEnv()
    with pytest.raises(error, match=match):
        env.reset(seed=0, options=options)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"suite": "shapez"}, UnknownNameError, "Unknown suite 'shapez'. Did you mean 'shapes'"),
        (
            {"experts": ["object-adder", "generalist"]},
            UnknownNameError,
            "Did you mean 'generalist-xl'",
        ),
        ({"experts": ["object-adder"]}, ConfigError, "at least one 't2i' expert"),
        ({"max_steps": 0}, ConfigError, "max_steps must be an integer >= 1, got 0"),
        ({"max_attempts": 1.5}, ConfigError, "max_attempts must be an integer"),
        ({"image_size": (64,)}, ConfigError, "image_size must be"),
        ({"reward": {"progres": 1.0}}, ConfigError, r"Unknown reward field\(s\) \['progres'\]"),
        ({"reward": {"progress": float("nan")}}, ConfigError, "finite number"),
        ({"suite_kwargs": {"difficulty": "extreme"}}, ConfigError, "difficulty must be one of"),
        ({"suite_kwargs": {"split": "val"}}, ConfigError, "split must be one of"),
    ],
)
def test_bad_config_raises_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        gym.make("ImagePoser-v0", **kwargs)


def test_unsupported_render_mode_is_refused():
    with pytest.raises(
        ConfigError, match=r"render_mode must be None or one of \['rgb_array'\], got 'human'"
    ):
        ImagePoserEnv(render_mode="human")


def test_task_option_uses_reference_constraints_for_success():
    env = ImagePoserEnv()
    sampled = env.suite.tasks.sample(np.random.default_rng(0))
    obs, info = env.reset(seed=0, options={"task": sampled})
    assert info["prompt"] == sampled.prompt
    assert isinstance(env.task, Task) and env.task.constraints == sampled.constraints


def test_registered_ids_are_real_presets():
    assert {
        "ImagePoser-v0",
        "ImagePoser-Easy-v0",
        "ImagePoser-Hard-v0",
        "ImagePoser-Edit-v0",
    } <= set(gym.registry)
    lengths = {}
    for env_id in ("ImagePoser-Easy-v0", "ImagePoser-Hard-v0"):
        env = gym.make(env_id)
        lengths[env_id] = [int(env.reset(seed=s)[1]["commands_total"]) for s in range(30)]
    assert max(lengths["ImagePoser-Easy-v0"]) <= 2
    assert min(lengths["ImagePoser-Hard-v0"]) >= 3
    assert poser_env.__version__


def test_final_metrics_reuse_the_last_critique_without_reference_constraints():
    suite = make_suite("shapes")
    calls = []
    judge = suite.critic.judge

    def counting_judge(*args, **kwargs):
        calls.append(args[1])
        return judge(*args, **kwargs)

    suite.critic.judge = counting_judge
    env = ImagePoserEnv(suite=suite)
    env.reset(
        seed=0, options={"prompt": "Draw two red circles on the left."}
    )  # no reference constraints
    steps = 0
    while True:
        steps += 1
        *_, term, trunc, info = env.step(OraclePolicy()(env))
        if term or trunc:
            break
    assert len(calls) == steps and None not in calls, (
        "one critic call per step, none extra at the end"
    )
    env.reset(seed=0)  # a sampled task has reference constraints: judged once more at the end
    calls.clear()
    steps = 0
    while True:
        steps += 1
        *_, term, trunc, info = env.step(OraclePolicy()(env))
        if term or trunc:
            break
    assert len(calls) == steps + 1 and calls[-1] is None
