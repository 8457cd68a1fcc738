"""Baselines under the same evaluation as learned policies.

The reference policies of the Shapes world (:mod:`poser_env.suites.shapes.policies`) are
reused as they are and wrapped as :class:`~poser_agents.algos.Agent` objects; this module
adds the two the benchmark needs besides them:

* :class:`SingleT2IPolicy` (``single:<t2i>``) - the issue's "single expert": the given
  text-to-image expert for the first command of a generation task, then for every later
  command (and every command of an editing task) the image-to-image expert whose speciality
  matches the command kind (:data:`MATCHING_I2I`).
* :class:`RouterPolicy` (``router``) - a fixed hand-written router: picks the text-to-image
  expert from the first command's constraints (layout, style, counts, colours) and the
  matching image-to-image expert after that. It reads ``env.unwrapped.current_command``
  (the extractor's structured command), which a learned text policy does not see.

``best-single`` is not a policy: the benchmark evaluates every ``single:<t2i>`` and keeps
the best (chosen on the evaluation episodes themselves, which favours the baseline).
``always:<expert>`` is poser_env's ``SingleExpertPolicy`` (the same expert every step).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from poser_agents.error import AgentsConfigError
from poser_env.error import UnknownNameError
from poser_env.suites.shapes.policies import OraclePolicy, PipelinePolicy, RandomPolicy, SingleExpertPolicy

#: command kind -> image-to-image expert of the default Shapes pool specialised in it.
MATCHING_I2I: dict[str, str] = {
    "add": "object-adder",
    "remove": "object-eraser",
    "recolor": "recolorist",
    "move": "object-mover",
    "restyle": "restyler",
    "refine": "edit-generalist",
    "generate": "object-adder",  # a later "draw ..." command adds to the existing image
}


def _index(env: gym.Env, name: str) -> int:
    names = env.unwrapped.expert_names
    if name not in names:
        raise UnknownNameError("expert", name, names)
    return names.index(name)


def _first_generation_command(base: Any) -> bool:
    """True while the current command is the first one of a generation task."""
    if not base.progress_has_image:
        return True
    if base.task.kind != "generation":
        return False
    first, command = base.plan.commands[0], base.current_command
    return command is not None and (command == first or command.reflection_of == first.text)


def matching_i2i(env: gym.Env) -> int:
    """Index of the image-to-image expert matching the current command's kind."""
    base = env.unwrapped
    command = base.current_command
    kind = command.kind if command is not None else "refine"
    return _index(env, MATCHING_I2I.get(kind, "edit-generalist"))


class SingleT2IPolicy:
    """``single:<t2i>``: one text-to-image expert for the first command, then the
    image-to-image expert matching each later command.

    Args:
        t2i: Name of a text-to-image expert.
    """

    def __init__(self, t2i: str):
        self.t2i = t2i
        self.name = f"single:{t2i}"

    def __call__(self, env: gym.Env) -> int:
        base = env.unwrapped
        i = _index(env, self.t2i)
        if base.experts[i].kind != "t2i":
            t2i = [e.name for e in base.experts if e.kind == "t2i"]
            raise AgentsConfigError(f"single:<expert> needs a text-to-image expert; {self.t2i!r} is not one of {t2i}.")
        return i if _first_generation_command(base) else matching_i2i(env)


class RouterPolicy:
    """``router``: a fixed hand-written routing table (see the module docstring).

    First command of a generation task: ``layout-planner`` if it places objects (regions,
    relations), else ``style-painter`` if it asks for a background style, else
    ``count-master`` for one group of several objects, else ``color-binder`` for several
    coloured groups, else ``generalist-xl``. Later commands: :data:`MATCHING_I2I`.
    """

    name = "router"

    def __call__(self, env: gym.Env) -> int:
        base = env.unwrapped
        if not _first_generation_command(base):
            return matching_i2i(env)
        command = base.current_command
        kinds = [c.kind for c in command.constraints]
        counts = [c for c in command.constraints if c.kind == "count" and c.count > 0]
        if "region" in kinds or "relation" in kinds:
            pick = "layout-planner"
        elif "background" in kinds:
            pick = "style-painter"
        elif len(counts) == 1 and counts[0].count > 1:
            pick = "count-master"
        elif len(counts) > 1:
            pick = "color-binder"
        else:
            pick = "generalist-xl"
        return _index(env, pick)


class PolicyAgent:
    """Wraps a ``policy(env) -> action`` callable as an :class:`~poser_agents.algos.Agent`."""

    def __init__(self, policy: Any, name: str | None = None):
        self.policy = policy
        self.name = name or getattr(policy, "name", type(policy).__name__)

    def learn(self, total_timesteps: int, callback: Any = None) -> PolicyAgent:
        return self  # baselines do not learn

    def act(self, observation: Any, env: gym.Env) -> int:
        return int(self.policy(env))


def t2i_experts(env: gym.Env) -> list[str]:
    """Names of the env's text-to-image experts."""
    return [e.name for e in env.unwrapped.experts if e.kind == "t2i"]


def make_baseline(name: str, env: gym.Env, seed: int = 0) -> PolicyAgent:
    """Build a baseline agent by name.

    Args:
        name: ``random``, ``oracle``, ``router``, ``single:<t2i>``, ``always:<expert>`` or
            ``pipeline:<t2i>><i2i>`` (``best-single`` is expanded by the benchmark).
        env: The evaluation env (to check expert names).
        seed: Seed of the random baseline.

    Raises:
        AgentsConfigError / UnknownNameError: For unknown names, with the valid ones.
    """
    names = list(env.unwrapped.expert_names)
    if name == "random":
        return PolicyAgent(RandomPolicy(seed), "random")
    if name == "oracle":
        return PolicyAgent(OraclePolicy(), "oracle")
    if name == "router":
        return PolicyAgent(RouterPolicy(), "router")
    if name.startswith("single:"):
        expert = name.split(":", 1)[1]
        if expert not in names:
            raise UnknownNameError("expert", expert, names)
        policy = SingleT2IPolicy(expert)
        if env.unwrapped.experts[names.index(expert)].kind != "t2i":
            raise AgentsConfigError(
                f"single:<expert> needs a text-to-image expert; {expert!r} is not one of {t2i_experts(env)}. "
                f"Use always:{expert} for the same expert at every step."
            )
        return PolicyAgent(policy)
    if name.startswith("always:"):
        expert = name.split(":", 1)[1]
        if expert not in names:
            raise UnknownNameError("expert", expert, names)
        return PolicyAgent(SingleExpertPolicy(expert), f"always:{expert}")
    if name.startswith("pipeline:"):
        spec = name.split(":", 1)[1]
        if ">" not in spec:
            raise AgentsConfigError(f"pipeline baseline must be 'pipeline:<t2i>><i2i>', got {name!r}.")
        t2i, i2i = spec.split(">", 1)
        for n in (t2i, i2i):
            if n not in names:
                raise UnknownNameError("expert", n, names)
        return PolicyAgent(PipelinePolicy(t2i, i2i))
    raise AgentsConfigError(
        f"Unknown baseline {name!r}; known baselines: random, oracle, router, best-single, "
        "single:<t2i expert>, always:<expert>, pipeline:<t2i>><i2i>."
    )
