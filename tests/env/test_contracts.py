"""The env's contracts with the libraries around it and with its own components.

* ``gym.make(..., max_episode_steps=N)`` ends episodes like ``max_steps=N`` (final metrics,
  terminal reward).
* ``render()`` frames have one size per env, so ``RecordVideo`` writes a file.
* Stable-Baselines3 given the raw env says to use ``poser_env.wrappers.EncodeObservation``.
* Every component output is checked at the boundary: a bad one truncates the step like a
  failing component, and no NaN reaches a reward or an observation.
* Values that decide behaviour have strict types, checked when the object is built.
"""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction
from gymnasium.utils.env_checker import data_equivalence

import poser_env  # noqa: F401 - registers the ids
from poser_env.components import CommandExtractor, Expert, ExpertResult, Task
from poser_env.envs.image_poser import ImagePoserEnv
from poser_env.error import ComponentError, ConfigError, PromptParseError
from poser_env.suites import make_suite
from poser_env.text import SB3_HINT

PROMPT = "Draw two red circles on the left. Then add a blue square on the right. Then make the background dotted."


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for a in actions:
        step = env.step(a)
        out.append(step)
        if step[2] or step[3]:
            break
    return out


# ------------------------------------------------------------------ max_episode_steps
@pytest.mark.parametrize("cap", [1, 2, 3])
def test_max_episode_steps_ends_the_episode_like_max_steps(cap):
    actions = [6, 0, 6, 7, 1, 7]  # an invalid i2i action first: no episode ends by itself early
    capped = rollout(gym.make("ImagePoser-v0", max_episode_steps=cap), 4, actions)
    native = rollout(gym.make("ImagePoser-v0", max_steps=cap), 4, actions)
    assert len(capped) == len(native) == cap + 1
    *_, last = capped
    assert last[3] and not last[2], "truncated at the cap"
    assert last[4]["final_metrics"]["episode_over"] and last[4]["final_metrics"]["steps"] == cap
    assert data_equivalence(capped, native), (
        "same observations (step/max_steps), rewards (terminal reward) and infos"
    )


def test_max_steps_below_max_episode_steps_still_wins():
    out = rollout(gym.make("ImagePoser-v0", max_steps=2, max_episode_steps=5), 4, [6, 6, 6, 6])
    assert len(out) == 3 and out[-1][3] and out[-1][4]["final_metrics"]["episode_over"]


# ------------------------------------------------------------------ rendering
def test_render_frames_have_one_size_whatever_the_caption_length():
    env = gym.make("ImagePoser-v0", render_mode="rgb_array")
    shapes = set()
    long = "Draw a big red circle. " + " Then ".join(
        f"add a small {c} triangle on the right"
        for c in ("blue", "green", "yellow", "red", "purple")
    )
    for seed, options in [(0, None), (1, {"prompt": long}), (2, {"prompt": "Draw a circle."})]:
        env.reset(seed=seed, options=options)
        shapes.add(env.render().shape)
        for a in (0, 6, 1, 7, 2):
            *_, term, trunc, _ = env.step(a)
            shapes.add(env.render().shape)
            if term or trunc:
                break
    assert len(shapes) == 1, shapes
    (shape,) = shapes
    assert shape[1] == 256 and shape[0] > 256 and shape[2] == 3


def test_record_video_writes_a_file(tmp_path):
    pytest.importorskip("moviepy")
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(
        gym.make("ImagePoser-v0", render_mode="rgb_array"),
        str(tmp_path),
        episode_trigger=lambda e: True,
        disable_logger=True,
    )
    for seed in (0, 1):
        env.reset(seed=seed)
        for a in (0, 6, 1, 7, 2, 8):
            *_, term, trunc, _ = env.step(a)
            if term or trunc:
                break
    env.close()
    videos = sorted(tmp_path.glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 0 for v in videos)


# ------------------------------------------------------------------ SB3 on the raw env
def test_sb3_given_the_raw_env_names_the_wrapper():
    sb3 = pytest.importorskip("stable_baselines3")
    with pytest.raises(TypeError, match=r"poser_env\.wrappers\.EncodeObservation"):
        sb3.DQN("MultiInputPolicy", gym.make("ImagePoser-v0"))


def test_maskable_ppo_given_the_raw_env_names_the_wrapper():
    contrib = pytest.importorskip("sb3_contrib")
    with pytest.raises(TypeError, match=r"poser_env\.wrappers\.EncodeObservation"):
        contrib.MaskablePPO("MultiInputPolicy", gym.make("ImagePoser-v0"))


def test_the_text_space_shape_is_still_none_for_everyone_else():
    space = gym.make("ImagePoser-v0").observation_space["prompt"]
    assert space.shape is None and isinstance(space, gym.spaces.Text)
    assert "EncodeObservation" in SB3_HINT


def test_sb3_trains_on_the_encoded_env_from_poser_env_alone():
    sb3 = pytest.importorskip("stable_baselines3")
    from poser_env.wrappers import EncodeObservation

    env = EncodeObservation(gym.make("ImagePoser-v0"), encoder="hashed")
    model = sb3.DQN(
        "MultiInputPolicy", env, learning_starts=8, buffer_size=64, train_freq=4, seed=0
    )
    model.learn(32)
    assert model.num_timesteps == 32
    # SB3 reads info["is_success"] at every episode end (its success-rate logging).
    assert len(model.ep_success_buffer) >= 3


# ------------------------------------------------------------------ component outputs
class _BadExpert(Expert):
    name, kind, cost = "bad", "t2i", 1.0

    def __init__(self, image=None, cost=1.0, result=None):
        self._image, self._cost, self._result = image, cost, result

    def __call__(self, command, image, seed):
        if self._result is not None:
            return self._result
        img = self._image if self._image is not None else np.full((128, 128, 3), 200, np.uint8)
        return ExpertResult(img, self._cost)


def _env_with(expert: Expert, **kw) -> ImagePoserEnv:
    suite = make_suite("shapes")
    suite.experts = (*suite.experts, expert)
    return ImagePoserEnv(suite=suite, **kw)


def _assert_clean(obs, reward, info):
    assert math.isfinite(reward)
    assert (
        np.isfinite(obs["progress"]).all()
        and ((obs["progress"] >= 0) & (obs["progress"] <= 1)).all()
    )
    for key in ("prompt_score", "cost"):
        assert np.isfinite(info[key])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (
            _BadExpert(cost=float("nan")),
            r"expert 'bad' failed: ComponentOutputError: expert 'bad' returned cost nan; expected a finite number >= 0",
        ),
        (_BadExpert(cost=-2.0), r"returned cost -2.0; expected a finite number >= 0"),
        (_BadExpert(cost=float("inf")), r"returned cost inf"),
        (_BadExpert(cost="3"), r"returned cost '3'"),
        (
            _BadExpert(image=np.zeros((128, 128, 3), np.float32)),
            r"must be a \(128, 128, 3\) uint8 numpy array .* dtype float32",
        ),
        (_BadExpert(image=np.zeros((64, 64, 3), np.uint8)), r"shape \(64, 64, 3\)"),
        (
            _BadExpert(result=np.zeros((128, 128, 3), np.uint8)),
            r"must return a poser_env.ExpertResult, got ndarray",
        ),
    ],
)
def test_a_bad_expert_output_truncates_like_a_failing_expert(bad, match):
    env = _env_with(bad)
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(len(env.experts) - 1)
    assert trunc and not term
    assert info["error_component"] == "expert"
    assert pytest.approx(0.0) == info["cost"], "a bad cost is never charged"
    import re

    assert re.search(match, info["error"]), info["error"]
    _assert_clean(obs, reward, info)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        (
            "alignment",
            float("nan"),
            r"critic 'shapes-critic' returned alignment=nan; expected a finite number in \[0, 1\]",
        ),
        ("prompt_alignment", float("nan"), r"returned prompt_alignment=nan"),
        ("prompt_alignment", 1.5, r"returned prompt_alignment=1.5"),
        ("fidelity", -0.1, r"returned fidelity=-0.1"),
        ("overall", float("inf"), r"returned overall=inf"),
        ("accepted", "yes", r"returned accepted='yes'; expected True or False"),
    ],
)
def test_a_bad_critique_truncates_like_a_failing_critic(field, value, match):
    suite = make_suite("shapes")
    judge = suite.critic.judge
    suite.critic.judge = lambda *a, **k: dataclasses.replace(judge(*a, **k), **{field: value})
    env = ImagePoserEnv(suite=suite)
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(0)
    assert trunc and not term and info["error_component"] == "critic"
    import re

    assert re.search(match, info["error"]), info["error"]
    assert not info["verdict"]["has_verdict"], "the bad verdict is not reported as a verdict"
    _assert_clean(obs, reward, info)
    assert env.observation_space.contains(obs)


def test_a_bad_check_score_truncates():
    suite = make_suite("shapes")
    judge = suite.critic.judge

    def bad(*a, **k):
        c = judge(*a, **k)
        checks = tuple(dataclasses.replace(x, score=float("nan")) for x in c.checks)
        return dataclasses.replace(c, checks=checks)

    suite.critic.judge = bad
    env = ImagePoserEnv(suite=suite)
    env.reset(seed=0)
    *_, trunc, info = env.step(0)
    assert trunc and "check score nan" in info["error"]


def test_a_bad_critique_of_the_source_image_starts_from_zero_with_the_error():
    suite = make_suite("shapes", editing_fraction=1.0)
    judge = suite.critic.judge
    suite.critic.judge = lambda *a, **k: dataclasses.replace(
        judge(*a, **k), prompt_alignment=float("nan")
    )
    env = ImagePoserEnv(suite=suite)
    obs, info = env.reset(seed=0)
    assert info["error_component"] == "critic" and "prompt_alignment=nan" in info["error"]
    assert info["prompt_score"] == 0.0 and np.isfinite(obs["progress"]).all()


# ------------------------------------------------------------------ the extractor in reset
class _BrokenExtractor(CommandExtractor):
    name = "broken-llm"

    def __init__(self, plan=None):
        self._plan = plan

    def extract(self, prompt, image=None):
        if self._plan is not None:
            return self._plan
        raise ConnectionError("the LLM server refused the connection (injected)")


def test_an_extractor_failure_in_reset_is_a_component_error_naming_it():
    suite = make_suite("shapes")
    suite.extractor = _BrokenExtractor()
    env = ImagePoserEnv(suite=suite)
    with pytest.raises(
        ComponentError,
        match=r"extractor 'broken-llm' failed: ConnectionError: the LLM server refused",
    ) as e:
        env.reset(seed=0)
    assert e.value.component == "extractor" and e.value.name == "broken-llm"
    assert isinstance(e.value.cause, ConnectionError)


def test_an_extractor_returning_no_plan_is_a_component_error():
    suite = make_suite("shapes")
    suite.extractor = _BrokenExtractor(plan=["draw a circle"])
    with pytest.raises(
        ComponentError,
        match=r"extractor 'broken-llm' failed: ComponentOutputError: "
        r"extract\(\) must return a poser_env.Plan, got list",
    ):
        ImagePoserEnv(suite=suite).reset(seed=0)


def test_an_unparseable_prompt_stays_a_prompt_parse_error():
    env = ImagePoserEnv()
    with pytest.raises(PromptParseError, match="purple elephant"):
        env.reset(options={"prompt": "Draw a purple elephant"})


# ------------------------------------------------------------------ strict types
@pytest.mark.parametrize("value", ["False", "true", 0, 1, None])
def test_keep_best_must_be_a_real_bool(value):
    with pytest.raises(ConfigError, match=rf"keep_best must be True or False, got {value!r}"):
        ImagePoserEnv(keep_best=value)


@pytest.mark.parametrize("action", [True, False, np.True_])
def test_bool_actions_are_refused(action):
    env = ImagePoserEnv()
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"not in the action space Discrete\(12\).*not a bool"):
        env.step(action)


def test_task_fields_are_checked_when_built():
    with pytest.raises(
        ConfigError, match=r"Task.kind must be one of \['generation', 'editing'\], got 'banana'"
    ):
        Task("Draw a circle.", kind="banana")
    with pytest.raises(ConfigError, match=r"got 'edting'. Did you mean 'editing'\?"):
        Task("Draw a circle.", kind="edting")
    with pytest.raises(ConfigError, match="Task.prompt must be a string, got int"):
        Task(3)
    with pytest.raises(ConfigError, match="Task.image must be None or an .* got list"):
        Task("Draw a circle.", image=[[0]])
    with pytest.raises(ConfigError, match="Task.meta must be a dict, got str"):
        Task("Draw a circle.", meta="x")


# ------------------------------------------------------------------ TorchRL's info reader
def test_torchrl_reads_the_numeric_info_keys():
    pytest.importorskip("torchrl")
    from torchrl.envs import GymWrapper
    from torchrl.envs.gym_like import default_info_dict_reader

    from poser_env.wrappers import EncodeObservation

    keys = [
        "is_success",
        "prompt_score",
        "cost",
        "invalid_action",
        "accepted",
        "dropped",
        "attempt",
        "commands_done",
    ]
    env = GymWrapper(EncodeObservation(gym.make("ImagePoser-v0"), encoder="hashed"))
    env.set_info_dict_reader(default_info_dict_reader(keys))  # Python bools/floats have no .dtype
    td = env.rollout(20, break_when_any_done=False)
    assert td["next", "is_success"].dtype.is_floating_point is False and td[
        "next", "cost"
    ].shape == (20,)
    assert td["next", "done"].any(), "episodes ended (and reset) within the rollout"


def test_huge_component_errors_are_capped_in_info():
    class _Loud(Expert):
        name, kind, cost = "loud", "t2i", 1.0

        def __call__(self, command, image, seed):
            raise RuntimeError("x" * 5_000_000)

    env = _env_with(_Loud())
    env.reset(seed=0)
    *_, trunc, info = env.step(len(env.experts) - 1)
    assert trunc and info["error"].startswith("expert 'loud' failed: RuntimeError: xxx")
    assert len(info["error"]) < 3000 and "characters cut" in info["error"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_max_episode_steps_in_vector_envs(mode):
    def run(**kw):
        venv = gym.make_vec("ImagePoser-v0", num_envs=2, vectorization_mode=mode, **kw)
        venv.reset(seed=[0, 1])
        out = [
            venv.step(np.array([6, 7])) for _ in range(3)
        ]  # invalid i2i actions: only the cap ends episodes
        venv.close()
        return [
            (r, term, trunc, info["final_metrics"]["episode_over"])
            for _, r, term, trunc, info in out
        ]

    capped, native = run(max_episode_steps=2), run(max_steps=2)
    assert data_equivalence(capped, native)
    assert capped[1][2].all() and capped[1][3].astype(bool).all(), (
        "both envs end at step 2 with final metrics"
    )
