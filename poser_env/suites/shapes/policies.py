"""Reference policies for the Shapes world (no learning, no torch).

* :class:`RandomPolicy` - uniform over the valid actions;
* :class:`SingleExpertPolicy` - always the same expert;
* :class:`PipelinePolicy` - a fixed text-to-image expert until there is an image, then a
  fixed image-to-image expert (the hand-made chains people build);
* :class:`RouterPolicy` - one fixed expert per command kind (hand-written rules);
* :class:`OraclePolicy` - knows every expert's skill profile and picks the one most likely
  to satisfy the current command without damaging the rest, net of cost.

Each is called as ``policy(env) -> action`` on an ``ImagePoserEnv`` (wrappers are
unwrapped). Only the oracle reads suite internals (the profiles and the perceived scene).
"""

from __future__ import annotations

import numpy as np

from poser_env.error import ConfigError, UnknownNameError
from poser_env.suites.shapes.experts import ShapesExpert
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.scene import Scene


def _base(env):
    return env.unwrapped


class RandomPolicy:
    """Uniform over valid actions (uses its own seeded generator)."""

    name = "random"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def __call__(self, env) -> int:
        valid = np.flatnonzero(_base(env).action_masks())
        return int(self.rng.choice(valid))


class SingleExpertPolicy:
    """Always calls the same expert (an i2i expert is invalid until there is an image)."""

    def __init__(self, expert: str):
        self.expert = expert
        self.name = f"single:{expert}"

    def __call__(self, env) -> int:
        names = _base(env).expert_names
        if self.expert not in names:
            raise UnknownNameError("expert", self.expert, names)
        return names.index(self.expert)


class PipelinePolicy:
    """A fixed text-to-image expert first, then a fixed image-to-image expert."""

    def __init__(self, t2i: str, i2i: str):
        self.t2i, self.i2i = t2i, i2i
        self.name = f"pipeline:{t2i}>{i2i}"

    def __call__(self, env) -> int:
        base = _base(env)
        names = base.expert_names
        for n in (self.t2i, self.i2i):
            if n not in names:
                raise UnknownNameError("expert", n, names)
        return names.index(self.i2i if base.progress_has_image else self.t2i)


class OraclePolicy:
    """Picks ``argmax_e P(success) * P(others preserved) - cost_weight * cost``.

    The probabilities come from the experts' skill profiles
    (``ShapesExpert.success_probability`` and ``preservation_probability``) applied to
    the perceived current image: the oracle knows the experts, it does not sample them.
    (Sampling each expert a few times and keeping the best estimate was tried and is
    worse: with 12 noisy estimates the maximum is biased towards lucky, cheap experts.)

    Args:
        cost_weight: Success probability traded per second of expert cost.
    """

    name = "oracle"

    def __init__(self, cost_weight: float = 0.01):
        self.cost_weight = cost_weight

    def __call__(self, env) -> int:
        base = _base(env)
        command = base.current_command
        mask = base.action_masks()
        has_image = bool(base.progress_has_image)
        scene = perceive(base.current_image).scene if has_image else Scene((), "plain")
        best, best_score = None, -np.inf
        for i, expert in enumerate(base.experts):
            if not mask[i]:
                continue
            if not isinstance(expert, ShapesExpert):
                raise ConfigError(
                    f"OraclePolicy needs Shapes experts; {expert.name!r} is {type(expert).__name__}."
                )
            p = expert.success_probability(command, scene) * expert.preservation_probability(
                command, scene
            )
            score = p - self.cost_weight * expert.cost
            if score > best_score:
                best, best_score = i, score
        return int(best)


class RouterPolicy:
    """``kind-router``: a fixed hand-written router, one expert per command kind, chosen by reading the
    expert descriptions once (what a careful engineer would wire by hand)."""

    name = "kind-router"
    ROUTES = {
        "generate": "generalist-xl",
        "add": "object-adder",
        "remove": "object-eraser",
        "recolor": "recolorist",
        "move": "object-mover",
        "restyle": "restyler",
        "refine": "edit-generalist",
    }

    def __call__(self, env) -> int:
        base = _base(env)
        names = base.expert_names
        kind = base.current_command.kind
        if not base.progress_has_image:
            kind = "generate"
        choice = self.ROUTES.get(kind, "generalist-xl")
        if choice not in names:
            raise UnknownNameError("expert", choice, names)
        return names.index(choice)


# --------------------------------------------------------------------------- v1 references
def _v1_experts(base) -> list:
    from poser_env.suites.shapes.skills import V1Expert

    for e in base.experts:
        if not isinstance(e, ShapesExpert):
            raise ConfigError(
                f"This policy needs Shapes experts; {e.name!r} is {type(e).__name__}."
            )
    return [e for e in base.experts if isinstance(e, V1Expert)]


def _argmax_expert(base, command, scene: Scene, cost_weight: float, has_image: bool) -> int:
    """``argmax_e P(success) * P(others preserved) - cost_weight * cost`` over valid experts."""
    mask = base.action_masks()
    best, best_score = None, -np.inf
    for i, expert in enumerate(base.experts):
        if not mask[i]:
            continue
        if not isinstance(expert, ShapesExpert):
            raise ConfigError(
                f"This policy needs Shapes experts; {expert.name!r} is {type(expert).__name__}."
            )
        p = expert.success_probability(command, scene) * expert.preservation_probability(
            command, scene
        )
        score = p - cost_weight * expert.cost
        if score > best_score:
            best, best_score = i, score
    return int(best)


#: kind -> expert of the v1 pool with the best mean P(success) * P(preserved) over the
#: (command, image) pairs the oracle meets on ImagePoser-v1 (train split, seeds 0-499):
#: the best table with one entry per command kind (see scripts/v1_table.py --routes).
V1_ROUTES = {
    "generate": "spiky-drafter",
    "add": "detail-editor",
    "remove": "detail-editor",
    "recolor": "instruct-editor",
    "move": "detail-editor",
    "restyle": "inpaint-masked",
    "refine": "detail-editor",
}


class KindRouterPolicy(RouterPolicy):
    """``kind-router`` for any Shapes pool: one expert per command kind, from a table
    (``V1_ROUTES`` when the env has v1 experts, else the v0 table).

    Args:
        routes: command kind -> expert name; ``None`` for the table that fits the pool.
    """

    def __init__(self, routes: dict[str, str] | None = None):
        self.routes = routes

    def __call__(self, env) -> int:
        base = _base(env)
        routes = self.routes
        if routes is None:
            routes = V1_ROUTES if _v1_experts(base) else self.ROUTES
        names = base.expert_names
        kind = base.current_command.kind if base.progress_has_image else "generate"
        choice = routes.get(
            kind, routes["generate"] if not base.progress_has_image else routes["refine"]
        )
        if choice not in names:
            raise UnknownNameError("expert", choice, names)
        return names.index(choice)


def _command_index(plan, command) -> int:
    """Position in ``plan`` of ``command`` or of the command it rewrites."""
    for i, c in enumerate(plan.commands):
        if c == command or c.text == command.reflection_of:
            return i
    return len(plan.commands) - 1


class WordRouterPolicy:
    """``word-router``: reads the current command's words (kind, shapes, colours, sizes,
    counts, layout and style words) and picks the expert that is best at exactly that
    content on an uncluttered plain image: a hand-written router as rich as words allow.
    It knows the experts' content profiles but never looks at the image.

    Args:
        cost_weight: Success probability traded per second of expert cost.
    """

    name = "word-router"

    def __init__(self, cost_weight: float = 0.01):
        self.cost_weight = cost_weight

    def __call__(self, env) -> int:
        from poser_env.suites.shapes.experts import _targets, place

        base = _base(env)
        command = base.current_command
        rng = np.random.default_rng(0)
        objs: list = []
        # The objects the command is about, where it needs them to exist already.
        t = _targets(command)
        for ref, n in t.counts:
            if n == 0 or command.kind in ("remove", "recolor", "move"):
                o = place(objs, ref.noun, ref.color or "red", ref.size or "medium", rng)
                if o is not None and (n == 0 or command.kind == "move"):
                    objs.append(o)
        for _, other in t.relations.values():
            o = place(objs, other.noun, other.color or "red", other.size or "medium", rng)
            if o is not None:
                objs.append(o)
        if base.progress_has_image and not objs:
            # Something else is in the image: a far-away bystander stands for it.
            objs.append(place(objs, "circle", "green", "medium", rng, region="left"))
        return _argmax_expert(
            base,
            command,
            Scene(tuple(o for o in objs if o is not None), "plain"),
            self.cost_weight,
            base.progress_has_image,
        )


class PlanOraclePolicy:
    """``plan-oracle``: knows every expert's skill model but sees only the text: it acts
    on the scene the plan implies (the previous commands executed exactly, from a blank
    canvas, or for an editing task from the objects its commands refer to, on a plain
    background), not on the actual image. The best a text-only policy can do, short of
    remembering its failures.

    Args:
        cost_weight: Success probability traded per second of expert cost.
    """

    name = "plan-oracle"

    def __init__(self, cost_weight: float = 0.01):
        self.cost_weight = cost_weight
        self._key = None
        self._scenes: dict[int, Scene] = {}

    def implied_scene(self, env, index: int) -> Scene:
        """The scene the plan implies before its command ``index``."""
        import zlib

        from poser_env.suites.shapes.experts import place
        from poser_env.suites.shapes.tasks import _PERFECT_I2I, _PERFECT_T2I

        base = _base(env)
        key = (base.task.prompt, id(base.plan))
        if key != self._key:
            self._key, self._scenes = key, {}
        if index in self._scenes:
            return self._scenes[index]
        rng = np.random.default_rng(zlib.crc32(base.task.prompt.encode()))
        scene = Scene((), "plain")
        if base.task.kind == "editing":
            # The text names only the objects its commands edit: two of each, by default.
            objs: list = []
            for cmd in base.plan.commands:
                for c in cmd.constraints:
                    ref = c.subject
                    if (
                        c.kind == "count"
                        and c.count == 0
                        and ref is not None
                        and ref.color is not None
                    ):
                        for _ in range(2):
                            o = place(objs, ref.noun, ref.color, ref.size or "medium", rng)
                            if o is not None:
                                objs.append(o)
            scene = Scene(tuple(objs), "plain")
        self._scenes[0] = scene
        for i, cmd in enumerate(base.plan.commands[:index]):
            expert = _PERFECT_T2I if cmd.kind == "generate" else _PERFECT_I2I
            scene, _ = expert.edit_scene(scene, cmd, rng)
            self._scenes[i + 1] = scene
        return self._scenes[index]

    def __call__(self, env) -> int:
        base = _base(env)
        command = base.current_command
        scene = self.implied_scene(env, _command_index(base.plan, command))
        return _argmax_expert(base, command, scene, self.cost_weight, base.progress_has_image)


class LookaheadPolicy:
    """``lookahead``: a planner that tries expert choices on copies of the env's simulator.

    For the oracle's ``candidates`` best experts it runs ``rollouts`` simulated episodes
    from the current state on deep copies of the env whose random generator is reseeded
    from the planner's own (so it never sees the outcome the real env will sample), with
    the oracle choosing every later step, and picks the candidate with the highest mean
    final success; it keeps the oracle's choice unless another candidate wins at least
    ``margin`` more rollouts. Candidates share random numbers across rollouts.

    Args:
        rollouts: Simulated episodes per candidate.
        candidates: Experts tried (the oracle's top ones).
        margin: Extra rollout wins another candidate needs to replace the oracle's choice.
        seed: Seed of the planner's own generator.
    """

    name = "lookahead"

    def __init__(self, rollouts: int = 12, candidates: int = 3, seed: int = 0, margin: int = 2):
        for what, v in (("rollouts", rollouts), ("candidates", candidates), ("margin", margin)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"LookaheadPolicy {what} must be an integer >= 1, got {v!r}.")
        self.rollouts, self.candidates, self.margin = rollouts, candidates, margin
        self.rng = np.random.default_rng(seed)
        self.oracle = OraclePolicy()

    def _copy(self, base, seed: int):
        import copy

        # Experts, critic, extractor and pool are stateless: share them, copy the episode.
        memo = {
            id(x): x
            for x in (
                base.suite,
                base.experts,
                base.pool,
                base.observation_space,
                base.action_space,
            )
        }
        sim = copy.deepcopy(base, memo)
        sim._np_random = np.random.default_rng(seed)
        sim._cache_counter = None
        return sim

    def _scores(self, base) -> list[tuple[float, int]]:
        command = base.current_command
        mask = base.action_masks()
        scene = (
            perceive(base.current_image).scene if base.progress_has_image else Scene((), "plain")
        )
        out = []
        for i, e in enumerate(base.experts):
            if mask[i]:
                p = e.success_probability(command, scene) * e.preservation_probability(
                    command, scene
                )
                out.append((p - self.oracle.cost_weight * e.cost, i))
        return sorted(out, reverse=True)

    def __call__(self, env) -> int:
        base = _base(env)
        ranked = [i for _, i in self._scores(base)][: self.candidates]
        if len(ranked) == 1:
            return ranked[0]
        seeds = self.rng.integers(2**31 - 1, size=self.rollouts)
        values = []
        for a in ranked:
            wins, ret = 0, 0.0
            for s in seeds:
                sim = self._copy(base, int(s))
                action = a
                while True:
                    _, r, term, trunc, info = sim.step(action)
                    ret += r
                    if term or trunc:
                        break
                    action = self.oracle(sim)
                wins += bool(info["final_metrics"]["success"])
            values.append((wins, ret))
        # Keep the oracle's choice unless another one wins clearly more rollouts: with few
        # rollouts the maximum of noisy estimates favours lucky candidates.
        best, (best_wins, best_ret) = ranked[0], values[0]
        for a, (wins, ret) in zip(ranked[1:], values[1:], strict=True):
            if wins >= best_wins + self.margin or (
                wins == best_wins and best is not ranked[0] and ret > best_ret
            ):
                best, best_wins, best_ret = a, wins, ret
        return int(best)
