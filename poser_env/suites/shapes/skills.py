"""The skill model of the Shapes world v1 (``ImagePoser-v1``): who succeeds depends on
what the command asks for and on what the current image holds.

In v0 an expert's chance of success depends only on the kind of skill a command needs, so
a 7-entry table (one expert per command kind) matches the profile-aware oracle. In v1 each
expert has a :class:`SkillModel`:

* **content-dependent skill**: multipliers per shape, colour and size it is asked to draw
  or edit, and a count limit past which it miscounts (real models fail at counting past
  three, at small objects, at some concepts). The one-line description does not say which.
* **image-dependent skill**: multipliers per background style of the *current* image
  (editors trained on clean backgrounds fail on textured ones) and per object beyond a
  crowding threshold; damage to bystanders that grows for bystanders close to the objects
  the command is about and for small bystanders. The right editor then depends on the
  image, not only on the text.

An expert call succeeds with probability :meth:`V1Expert.success_probability` (sampled
once per call): on success the command is executed exactly, on failure one of the usual
failures happens (an object dropped or given the wrong colour, a style ignored, an edit
not made). Damage is sampled per bystander, independently. Both probabilities are exact
functions of the command and the symbolic scene, so oracles can compute them and tests
can check the sampled frequencies against them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from poser_env.components import ExpertResult
from poser_env.constraints import COMMAND_KINDS, Command
from poser_env.error import ConfigError, did_you_mean
from poser_env.suites.shapes.experts import PERFECT, ShapesExpert, SkillProfile, _targets
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.scene import Obj, Scene, evaluate, in_region, matching, render
from poser_env.suites.shapes.vocab import CANVAS, COLORS, SHAPES, SIZES, STYLES

#: Centre distance (canvas pixels) under which a bystander counts as close to an object
#: the command is about (about one medium object plus a gap).
NEAR = 26.0
#: Share of failed edits (other than additions) that change a wrong object instead.
WRONG_OBJECT = 0.5


def _check_keys(what: str, mapping: Mapping[str, float], known: Sequence[str]) -> None:
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"SkillModel.{what} must be a dict of name -> number, got {type(mapping).__name__}."
        )
    for k, v in mapping.items():
        if k not in known:
            hint = did_you_mean(k, known)
            raise ConfigError(
                f"SkillModel.{what} has unknown key {k!r}; known: {list(known)}.{hint}"
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ConfigError(f"SkillModel.{what}[{k!r}] must be a number in [0, 1], got {v!r}.")


@dataclass(frozen=True)
class SkillModel:
    """What an expert of the v1 world is good at (probabilities and multipliers in [0, 1]).

    Attributes:
        kinds: Base success per command kind (``"generate"``, ``"add"``, ...); a missing
            kind has success 0. ``"refine"`` defaults to the mean of the edit kinds.
        shapes: Multiplier per shape the command draws or edits (missing: 1).
        colors: Multiplier per colour the command draws, edits or recolours to.
        sizes: Multiplier per size of the objects drawn or edited (the requested size, or
            the size the objects have in the current image).
        backgrounds: Multiplier per background style of the current image (editors only).
        count_limit: Objects one call can create or change reliably.
        count_decay: Multiplier per object beyond ``count_limit``.
        layout: Multiplier when the command places objects (a region or a relation).
        style: Multiplier when the command asks for a new background style.
        crowd_free: Objects an editor handles before crowding hurts.
        crowd_decay: Multiplier per object in the current image beyond ``crowd_free``.
        damage: Probability of damaging each bystander (an object the command is not about).
        damage_near: Extra damage probability for a bystander within ``NEAR`` pixels of an
            object the command is about (or inside the region it adds to).
        damage_small: Extra damage probability for a small bystander.
        noise: Light noise amplitude on every output (0-255 scale).
        aesthetic: Tidiness of composition in [0, 1].
    """

    kinds: Mapping[str, float]
    shapes: Mapping[str, float] = field(default_factory=dict)
    colors: Mapping[str, float] = field(default_factory=dict)
    sizes: Mapping[str, float] = field(default_factory=dict)
    backgrounds: Mapping[str, float] = field(default_factory=dict)
    count_limit: int = 4
    count_decay: float = 1.0
    layout: float = 1.0
    style: float = 1.0
    crowd_free: int = 99
    crowd_decay: float = 1.0
    damage: float = 0.0
    damage_near: float = 0.0
    damage_small: float = 0.0
    noise: float = 1.0
    aesthetic: float = 0.6

    def __post_init__(self) -> None:
        _check_keys("kinds", self.kinds, COMMAND_KINDS)
        _check_keys("shapes", self.shapes, SHAPES)
        _check_keys("colors", self.colors, tuple(COLORS))
        _check_keys("sizes", self.sizes, tuple(SIZES))
        _check_keys("backgrounds", self.backgrounds, STYLES)
        for name in ("count_limit", "crowd_free"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"SkillModel.{name} must be an integer >= 0, got {v!r}.")
        for f in fields(self):
            if f.name in (
                "kinds",
                "shapes",
                "colors",
                "sizes",
                "backgrounds",
                "count_limit",
                "crowd_free",
            ):
                continue
            v = getattr(self, f.name)
            hi = 255.0 if f.name == "noise" else 1.0
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= hi:
                raise ConfigError(f"SkillModel.{f.name} must be a number in [0, {hi}], got {v!r}.")

    def kind_skill(self, kind: str) -> float:
        """Base success at a command kind."""
        if kind == "refine" and "refine" not in self.kinds:
            edits = [
                self.kinds.get(k, 0.0) for k in ("add", "remove", "recolor", "move", "restyle")
            ]
            return sum(edits) / len(edits)
        return float(self.kinds.get(kind, 0.0))

    def card(self) -> SkillProfile:
        """A v0-style profile with only the per-kind skills (what a model card says): for
        code that reads ``expert.profile``. The content and image pattern is not in it."""
        k = self.kind_skill
        return SkillProfile(
            presence=1.0,
            counting=1.0,
            binding=1.0,
            spatial=1.0,
            style=max(k("restyle"), self.style * k("generate")),
            add=k("add"),
            remove=k("remove"),
            recolor=k("recolor"),
            move=k("move"),
            damage=min(1.0, self.damage),
            artefacts=0.0,
            noise=self.noise,
            aesthetic=self.aesthetic,
        )


@dataclass(frozen=True)
class CommandFeatures:
    """What the skill model reads from a command and the image it applies to.

    Attributes:
        kind: The command kind.
        shapes, colors, sizes: Content the command draws or edits.
        n_changed: Objects the call must create or change.
        layout: Whether it places objects by region or relation.
        style: Whether it asks for a background style the image does not have.
        background: Background style of the current image (``"plain"`` for none).
        n_objects: Objects in the current image.
        bystanders: ``(near, small)`` flags of every object the command is not about.
    """

    kind: str
    shapes: frozenset[str]
    colors: frozenset[str]
    sizes: frozenset[str]
    n_changed: int
    layout: bool
    style: bool
    background: str
    n_objects: int
    bystanders: tuple[tuple[bool, bool], ...]


def command_features(command: Command, scene: Scene) -> CommandFeatures:
    """Read :class:`CommandFeatures` from ``command`` applied to the symbolic ``scene``."""
    targets = _targets(command)
    objs = scene.objects
    shapes, colors, sizes = set(), set(), set()
    n_changed = 0
    focus: list[Obj] = []
    for ref, n in targets.counts:
        current = matching(objs, ref)
        focus += current
        shapes.add(ref.noun)
        if ref.color:
            colors.add(ref.color)
        if ref.size:
            sizes.add(ref.size)
        sizes.update(o.size for o in current)
        if n == 0 or len(current) > n:
            n_changed += len(current) if n == 0 else len(current) - n
        else:
            n_changed += n - len(current)
    for ref in dict.fromkeys([*targets.regions, *targets.relations]):
        if command.kind == "move":
            n_changed = max(n_changed, len(matching(objs, ref)))
    anchors = [o for _, other in targets.relations.values() for o in matching(objs, other)]
    # Recolouring in place: the objects in the old colour are changed, not added.
    focus_ids = {id(o) for o in focus}
    near_pts = [(o.x, o.y) for o in focus + anchors]
    add_regions = [
        targets.regions[r]
        for r, n in targets.counts
        if r in targets.regions and n > len(matching(objs, r))
    ]
    bystanders = []
    for o in objs:
        if id(o) in focus_ids:
            continue
        near = any(math.hypot(o.x - x, o.y - y) < NEAR for x, y in near_pts) or any(
            in_region(o.x, o.y, r) for r in add_regions
        )
        bystanders.append((near, o.size == "small"))
    return CommandFeatures(
        kind=command.kind,
        shapes=frozenset(shapes),
        colors=frozenset(colors),
        sizes=frozenset(sizes),
        n_changed=n_changed,
        layout=bool(targets.regions or targets.relations),
        style=targets.style is not None and targets.style != scene.background,
        background=scene.background,
        n_objects=len(objs),
        bystanders=tuple(bystanders),
    )


class V1Expert(ShapesExpert):
    """An expert of the Shapes world v1 (see the module docstring).

    Args:
        name: Unique name.
        kind: ``"t2i"`` or ``"i2i"``.
        cost: Simulated seconds of GPU time per call.
        skills: Its :class:`SkillModel`.
        description: One line for the action table (it does not reveal the pattern).
    """

    def __init__(
        self, name: str, kind: str, cost: float, skills: SkillModel, description: str = ""
    ):
        if not isinstance(skills, SkillModel):
            raise ConfigError(f"V1Expert skills must be a SkillModel, got {type(skills).__name__}.")
        super().__init__(name, kind, cost, skills.card(), description)
        self.skills = skills
        perfect = replace(PERFECT, noise=skills.noise, aesthetic=skills.aesthetic)
        self._exact = ShapesExpert(name, kind, cost, perfect)

    # ------------------------------------------------------------------ probabilities
    def success_probability(self, command: Command, scene: Scene) -> float:
        """Probability that a call satisfies ``command`` on ``scene`` (exact, up to the
        rare case where there is no room to place an object)."""
        base = Scene((), "plain") if self.kind == "t2i" else scene
        return self._success(command_features(command, base))

    def _success(self, f: CommandFeatures) -> float:
        s = self.skills
        kind = f.kind
        if self.kind == "i2i" and kind == "generate":
            kind = "add"  # an editor asked to "draw" adds to the image
        p = s.kind_skill(kind)
        for shape in f.shapes:
            p *= s.shapes.get(shape, 1.0)
        for color in f.colors:
            p *= s.colors.get(color, 1.0)
        for size in f.sizes:
            p *= s.sizes.get(size, 1.0)
        if f.n_changed > s.count_limit:
            p *= s.count_decay ** (f.n_changed - s.count_limit)
        if f.layout:
            p *= s.layout
        if f.style:
            p *= s.style
        if self.kind == "i2i":
            p *= s.backgrounds.get(f.background, 1.0)
            if f.n_objects > s.crowd_free:
                p *= s.crowd_decay ** (f.n_objects - s.crowd_free)
        return float(min(1.0, max(0.0, p)))

    def damage_probabilities(self, command: Command, scene: Scene) -> list[float]:
        """Per bystander of ``command`` in ``scene``, the probability this call damages it."""
        s = self.skills
        f = command_features(command, scene)
        return [
            min(1.0, s.damage + s.damage_near * near + s.damage_small * small)
            for near, small in f.bystanders
        ]

    def preservation_probability(self, command: Command, scene: Scene) -> float:
        """Probability that every object the command is not about survives the call."""
        if self.kind == "t2i":
            return super().preservation_probability(command, scene)
        damage = self.damage_probabilities(command, scene)
        keep = float(np.prod([1.0 - d for d in damage]))
        if damage and command.kind not in ("generate", "add"):
            # A failed edit lands on the wrong object half the time (see _fail).
            keep *= 1.0 - WRONG_OBJECT * (1.0 - self.success_probability(command, scene))
        return keep

    # ------------------------------------------------------------------ execution
    def __call__(self, command: Command, image: np.ndarray | None, seed: int) -> ExpertResult:
        rng = np.random.default_rng(seed)
        if self.kind == "t2i" or image is None:
            if self.kind == "i2i":
                raise ValueError(
                    f"Image-to-image expert {self.name!r} needs an input image, got None."
                )
            base = Scene((), "plain")
        else:
            base = perceive(image).scene
        scene, events = self.edit_scene(base, command, rng)
        out = render(scene)
        out, _ = self._artefacts(out, rng)
        return ExpertResult(out, self.cost, {"events": events})

    def edit_scene(
        self, base: Scene, command: Command, rng: np.random.Generator
    ) -> tuple[Scene, list[str]]:
        """Apply ``command`` to ``base``: exactly with the success probability, else with
        one typical failure; then damage bystanders (editors)."""
        p_success = self.success_probability(command, base)
        damage = self.damage_probabilities(command, base) if self.kind == "i2i" else []
        ok = bool(rng.random() < p_success)
        done, events = self._exact.edit_scene(base, command, rng)
        if not ok:
            done, event = self._fail(base, done, command, rng)
            events.append(event)
        if damage:
            done = self._damage(base, done, command, damage, rng, events)
        return done, events

    @staticmethod
    def _satisfied(command: Command, scene: Scene) -> bool:
        return all(evaluate(c, scene.objects, scene.background)[0] for c in command.constraints)

    def _fail(
        self, base: Scene, done: Scene, command: Command, rng: np.random.Generator
    ) -> tuple[Scene, str]:
        """A failed call: for drawing, one object dropped, recoloured or misplaced or the
        style ignored; for other edits, the edit is not made."""
        before = set(base.objects)
        new = [o for o in done.objects if o not in before]
        options: list[tuple[str, Scene]] = []
        if command.kind in ("generate", "add") and new:
            victim = new[int(rng.integers(len(new)))]
            rest = tuple(o for o in done.objects if o is not victim)
            options.append(("miscount: dropped an object", Scene(rest, done.background)))
            wrong = [c for c in COLORS if c != victim.color]
            recol = Obj(
                victim.shape, wrong[int(rng.integers(len(wrong)))], victim.size, victim.x, victim.y
            )
            options.append(
                (
                    "colour leak",
                    Scene(
                        tuple(recol if o is victim else o for o in done.objects), done.background
                    ),
                )
            )
            if done.background != base.background:
                options.append(("ignored style", Scene(done.objects, base.background)))
        else:
            options.append((f"failed {command.kind}", base))
            # Half the time a failed edit lands on the wrong object.
            refs = [r for r, _ in _targets(command).counts]
            others = [
                o
                for o in base.objects
                if not any(r.matches(o.shape, o.color, o.size) for r in refs)
            ]
            if others and rng.random() < WRONG_OBJECT:
                victim = others[int(rng.integers(len(others)))]
                wrong = [c for c in COLORS if c != victim.color]
                hit = Obj(
                    victim.shape,
                    wrong[int(rng.integers(len(wrong)))],
                    victim.size,
                    victim.x,
                    victim.y,
                )
                options = [
                    (
                        f"failed {command.kind}: edited the wrong object",
                        Scene(
                            tuple(hit if o is victim else o for o in base.objects), base.background
                        ),
                    )
                ]
        order = rng.permutation(len(options))
        for i in order:
            event, scene = options[int(i)]
            if not self._satisfied(command, scene):
                return scene, event
        # Every typical failure happens to satisfy the command: drop a new object, or keep
        # the input as it was.
        if new:
            return Scene(
                tuple(o for o in done.objects if o is not new[0]), done.background
            ), "miscount: dropped an object"
        return base, f"failed {command.kind}"

    def _damage(
        self, base: Scene, done: Scene, command: Command, probs: list[float], rng, events: list[str]
    ) -> Scene:
        # The bystanders of the input image, in command_features' order.
        targets = _targets(command)
        refs = [r for r, _ in targets.counts]
        bystanders = [
            o for o in base.objects if not any(r.matches(o.shape, o.color, o.size) for r in refs)
        ]
        assert len(bystanders) == len(probs)
        objs = list(done.objects)
        for o, p in zip(bystanders, probs, strict=True):
            if p <= 0 or rng.random() >= p or o not in objs:
                continue
            i = objs.index(o)
            how = int(rng.integers(3))
            if how == 0:
                objs.pop(i)
                events.append("damaged: removed an object")
            elif how == 1:
                wrong = [c for c in COLORS if c != o.color]
                objs[i] = Obj(o.shape, wrong[int(rng.integers(len(wrong)))], o.size, o.x, o.y)
                events.append("damaged: recoloured an object")
            else:
                # Shifted far enough to leave any region or relation it was in.
                dx = int(rng.choice([-1, 1])) * int(rng.integers(34, 50))
                objs[i] = o.moved(int(np.clip(o.x + dx, 8, CANVAS - 9)), o.y)
                events.append("damaged: moved an object")
        return Scene(tuple(objs), done.background)


def _m(**kw: Any) -> SkillModel:
    return SkillModel(**kw)


WARM = ("red", "orange", "yellow")
COOL = ("green", "blue", "purple")
TEXTURED = ("striped", "dotted", "checkered", "grid")


def v1_experts() -> tuple[V1Expert, ...]:
    """The default v1 pool of 12 experts (6 text-to-image, 6 image-to-image).

    ``docs/environment.md`` (section v1) tabulates the hidden patterns.
    """
    low = 0.35
    return (
        V1Expert(
            "sketch-turbo",
            "t2i",
            0.5,
            _m(
                kinds={"generate": 0.6},
                count_limit=2,
                count_decay=0.6,
                layout=0.7,
                style=0.6,
                noise=3.0,
                aesthetic=0.2,
            ),
            "Few-step sketcher: fast and cheap.",
        ),
        V1Expert(
            "warm-painter",
            "t2i",
            2.0,
            _m(
                kinds={"generate": 0.99},
                colors=dict.fromkeys(COOL, low),
                count_limit=4,
                layout=0.97,
                style=0.8,
            ),
            "Photoreal text-to-image model tuned on product shots.",
        ),
        V1Expert(
            "cool-painter",
            "t2i",
            2.0,
            _m(
                kinds={"generate": 0.99},
                colors=dict.fromkeys(WARM, low),
                count_limit=4,
                layout=0.97,
                style=0.8,
            ),
            "Text-to-image model tuned on landscapes.",
        ),
        V1Expert(
            "round-drafter",
            "t2i",
            2.0,
            _m(
                kinds={"generate": 0.99},
                shapes=dict.fromkeys(("triangle", "star", "cross"), low),
                count_limit=4,
                layout=0.98,
                style=0.9,
            ),
            "Diagram-style generator: clean layouts.",
        ),
        V1Expert(
            "spiky-drafter",
            "t2i",
            2.0,
            _m(
                kinds={"generate": 0.99},
                shapes=dict.fromkeys(("circle", "square", "diamond"), low),
                count_limit=4,
                layout=0.98,
                style=0.9,
            ),
            "Icon-style generator: crisp outlines.",
        ),
        V1Expert(
            "generalist-xl",
            "t2i",
            6.0,
            _m(
                kinds={"generate": 0.8},
                count_limit=2,
                count_decay=0.8,
                layout=0.9,
                style=0.9,
                aesthetic=0.8,
            ),
            "Large generalist: decent at everything, slow and expensive.",
        ),
        V1Expert(
            "inpaint-fast",
            "i2i",
            1.0,
            _m(
                kinds={"add": 0.98, "remove": 0.98, "recolor": 0.97, "move": 0.3, "restyle": 0.1},
                shapes=dict.fromkeys(("star", "cross"), 0.5),
                backgrounds=dict.fromkeys(TEXTURED, 0.3),
                damage=0.01,
                damage_near=0.2,
            ),
            "Fast inpainting editor for adding, removing and recolouring objects.",
        ),
        V1Expert(
            "inpaint-masked",
            "i2i",
            2.5,
            _m(
                kinds={"add": 0.3, "remove": 0.97, "recolor": 0.3, "move": 0.3, "restyle": 0.95},
                sizes={"small": 0.3},
                crowd_free=5,
                crowd_decay=0.75,
            ),
            "Mask-guided editor: segments the objects before it edits them or the background.",
        ),
        V1Expert(
            "instruct-editor",
            "i2i",
            2.0,
            _m(
                kinds={"add": 0.3, "remove": 0.3, "recolor": 0.96, "move": 0.95, "restyle": 0.6},
                backgrounds={"plain": 0.2},
                damage=0.01,
                damage_near=0.15,
            ),
            "Instruction-following editor trained on photos.",
        ),
        V1Expert(
            "object-mover",
            "i2i",
            2.0,
            _m(
                kinds={"add": 0.97, "remove": 0.2, "recolor": 0.15, "move": 0.98, "restyle": 0.1},
                backgrounds=dict.fromkeys(TEXTURED, 0.4),
                crowd_free=5,
                crowd_decay=0.6,
                damage=0.01,
                damage_near=0.03,
            ),
            "Drag-style layout editor: moves objects and places new ones.",
        ),
        V1Expert(
            "restyler",
            "i2i",
            1.5,
            _m(
                kinds={"add": 0.1, "remove": 0.1, "recolor": 0.2, "move": 0.1, "restyle": 0.98},
                damage_small=0.12,
            ),
            "Background restyler.",
        ),
        V1Expert(
            "detail-editor",
            "i2i",
            3.0,
            _m(
                kinds={"add": 0.97, "remove": 0.97, "recolor": 0.4, "move": 0.4, "restyle": 0.2},
                sizes={"big": 0.4},
                count_limit=2,
                count_decay=0.45,
            ),
            "High-resolution detail editor.",
        ),
    )
