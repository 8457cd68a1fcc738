"""Baselines under the same evaluation as learned policies.

The reference policies of the Shapes world (:mod:`poser_env.suites.shapes.policies`) are
reused as they are and wrapped as :class:`~poser_agents.algos.Agent` objects; this module
adds the two the benchmark needs besides them:

* :class:`SingleT2IPolicy` (``single:<t2i>``) - the issue's "single expert": the given
  text-to-image expert for the first command of a generation task, then for every later
  command (and every command of an editing task) the image-to-image expert whose speciality
  matches the command kind (:func:`matching_i2i`).
* :class:`SkillRouterPolicy` (``router``) - a fixed hand-written router: picks the text-to-image
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

from poser_agents.error import AgentsConfigError, close_hint
from poser_env.error import UnknownNameError
from poser_env.suites.shapes.policies import (
    KindRouterPolicy,
    LookaheadPolicy,
    OraclePolicy,
    PipelinePolicy,
    PlanOraclePolicy,
    RandomPolicy,
    SingleExpertPolicy,
    WordRouterPolicy,
)

#: Reference policies of poser_env built by name alone (the v1 table's rows).
_NAMED = {
    "kind-router": KindRouterPolicy,
    "word-router": WordRouterPolicy,
    "plan-oracle": PlanOraclePolicy,
    "lookahead": LookaheadPolicy,
}

#: command kind -> the ``SkillProfile`` field that measures an image-to-image expert's
#: skill at it (``None``: the mean of the edit skills, for a generalist).
KIND_SKILL: dict[str, str | None] = {
    "add": "add",
    "remove": "remove",
    "recolor": "recolor",
    "move": "move",
    "restyle": "style",
    "refine": None,
    "generate": "add",  # a later "draw ..." command adds to the existing image
}
_EDIT_SKILLS = ("add", "remove", "recolor", "move", "style")


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
    """Index of the image-to-image expert matching the current command's kind: the one
    whose profile is best at that kind of edit (read once from the profiles, the way an
    engineer reads model cards; experts without a profile count as generalists)."""
    base = env.unwrapped
    command = base.current_command
    skill = KIND_SKILL.get(command.kind if command is not None else "refine")
    return _best_by_profile(
        base, "i2i", skill, lambda p: sum(getattr(p, k) for k in _EDIT_SKILLS) / len(_EDIT_SKILLS)
    )


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
            raise AgentsConfigError(
                f"single:<expert> needs a text-to-image expert; {self.t2i!r} is not one of {t2i}."
            )
        return i if _first_generation_command(base) else matching_i2i(env)


class SkillRouterPolicy:
    """``router``: a fixed hand-written routing table (see the module docstring).

    First command of a generation task: a specialist when the command needs only one
    skill, else the most even all-rounder - the best text-to-image expert at ``spatial``
    for one colour group placed by region or relation; at ``style`` for a background style
    with one object; at ``counting`` for one group of several objects; at ``binding`` for
    several groups of one object each; otherwise the one with the highest worst skill.
    Later commands: :func:`matching_i2i`. Skills are read from the experts' profiles, so
    the table survives renamed or recalibrated experts.
    """

    name = "router"

    def __call__(self, env: gym.Env) -> int:
        base = env.unwrapped
        if not _first_generation_command(base):
            return matching_i2i(env)
        return _best_t2i(base, self.needed_skill(base.current_command))

    @staticmethod
    def needed_skill(command: Any) -> str | None:
        """The one skill a first command needs, or ``None`` for several."""
        kinds = {c.kind for c in command.constraints}
        counts = [c.count for c in command.constraints if c.kind == "count" and c.count > 0]
        spatial = bool(kinds & {"region", "relation"})
        style = "background" in kinds
        groups, many = len(counts), any(n > 1 for n in counts)
        if spatial and groups <= 1 and not style:
            return "spatial"
        if style and groups <= 1 and not many and not spatial:
            return "style"
        if groups == 1 and many and not (spatial or style):
            return "counting"
        if groups > 1 and not (many or spatial or style):
            return "binding"
        return None


_T2I_SKILLS = ("presence", "counting", "binding", "spatial", "style")


def _best_t2i(base: Any, skill: str | None) -> int:
    return _best_by_profile(base, "t2i", skill, lambda p: min(getattr(p, k) for k in _T2I_SKILLS))


def _best_by_profile(base: Any, kind: str, skill: str | None, overall: Any) -> int:
    """Index of the ``kind`` expert whose profile scores highest at ``skill`` (``overall``
    of the profile when ``skill`` is None; 0.5 for experts without a profile); the first
    one wins ties."""
    best, best_score = None, -1.0
    for i, expert in enumerate(base.experts):
        if expert.kind != kind:
            continue
        profile = getattr(expert, "profile", None)
        if profile is None:
            score = 0.5
        elif skill is None:
            score = overall(profile)
        else:
            score = getattr(profile, skill)
        if score > best_score:
            best, best_score = i, score
    if best is None:
        what = {"t2i": "text-to-image", "i2i": "image-to-image"}[kind]
        raise AgentsConfigError(
            f"The env has no {what} expert; experts: {list(base.expert_names)}."
        )
    return best


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
        name: ``random``, ``oracle``, ``router``, ``kind-router``, ``word-router``,
            ``plan-oracle``, ``lookahead``, ``single:<t2i>``, ``always:<expert>`` or
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
        return PolicyAgent(SkillRouterPolicy(), "router")
    if name in _NAMED:
        return PolicyAgent(_NAMED[name](), name)
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
            raise AgentsConfigError(
                f"pipeline baseline must be 'pipeline:<t2i>><i2i>', got {name!r}."
            )
        t2i, i2i = spec.split(">", 1)
        for n in (t2i, i2i):
            if n not in names:
                raise UnknownNameError("expert", n, names)
        return PolicyAgent(PipelinePolicy(t2i, i2i))
    fixed = ["random", "oracle", "router", *_NAMED, "best-single"]
    raise AgentsConfigError(
        f"Unknown baseline {name!r}.{close_hint(name, fixed)} "
        "Known baselines: random, oracle, router, kind-router, word-router, "
        "plan-oracle, lookahead, best-single, "
        "single:<t2i expert>, always:<expert>, pipeline:<t2i>><i2i>."
    )
