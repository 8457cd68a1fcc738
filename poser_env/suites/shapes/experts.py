"""Simulated experts of the Shapes world.

Each expert is a :class:`ShapesExpert` with a :class:`SkillProfile`: the probability that it
gets each skill right, how often it damages what it should leave alone, its artefacts, its
sense of composition and its cost. Text-to-image experts draw the command's content from
scratch; image-to-image experts perceive the input image (pixels only, like a real editing
model) and change it. Calls are deterministic given the seed.

The default pool of 12 (6 t2i, 6 i2i) is designed so that expert choice matters: every
expert is strong at some skills and weak at others, and the generalists are costly and only
decent. ``docs/environment.md`` tabulates the profiles.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from poser_env.components import Expert, ExpertResult
from poser_env.constraints import Command, ObjectRef
from poser_env.error import ConfigError
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.scene import (
    Obj,
    Scene,
    free_grid,
    in_region,
    matching,
    relation_holds,
    render,
)
from poser_env.suites.shapes.vocab import CANVAS, COLORS, REGIONS, RELATION_MARGIN, SHAPES, SIZES

_GAP = 3  # minimum free pixels between objects when placing
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@dataclass(frozen=True)
class SkillProfile:
    """How good an expert is at each skill (probabilities of getting it right, in [0, 1]).

    Attributes:
        presence: Draws every requested object group (else secondary groups are dropped).
        counting: Gets a count right; applied once per object beyond the first.
        binding: Binds each colour to the right object (else colours leak between groups).
        spatial: Honours regions (else places objects anywhere).
        relation: Honours relations to other objects ("left of the circles"); ``None``
            means the same as ``spatial``.
        style: Honours a requested background style (t2i) or restyles (i2i).
        add, remove, recolor, move: Edit skills (i2i experts).
        damage: Probability that an edit also disturbs one object it should leave alone.
        artefacts: Probability of a heavy artefact (strong noise or blur) in the output.
        noise: Amplitude of the light noise on every output (0-255 scale).
        aesthetic: Tidiness of composition in [0, 1] (spreads objects, keeps margins).
    """

    presence: float = 0.9
    counting: float = 0.8
    binding: float = 0.8
    spatial: float = 0.7
    relation: float | None = None
    style: float = 0.7
    add: float = 0.0
    remove: float = 0.0
    recolor: float = 0.0
    move: float = 0.0
    damage: float = 0.0
    artefacts: float = 0.05
    noise: float = 2.0
    aesthetic: float = 0.5

    def __post_init__(self) -> None:
        if self.relation is None:
            object.__setattr__(self, "relation", self.spatial)
        for f in fields(self):
            v = getattr(self, f.name)
            hi = 255.0 if f.name == "noise" else 1.0
            if not (0.0 <= v <= hi):
                raise ConfigError(f"SkillProfile.{f.name} must be in [0, {hi}], got {v!r}.")


@functools.lru_cache(maxsize=32)
def _noise_bank(amplitude: float) -> np.ndarray:
    """Fixed Gaussian noise of standard deviation ``amplitude`` to crop from (int16), so
    outputs cost no fresh random field."""
    unit = np.random.default_rng(12345).standard_normal((2 * CANVAS, 2 * CANVAS, 3))
    return np.round(unit * amplitude).astype(np.int16)


#: Largest light-noise amplitude taken by the fast path (3 sigma = 12 grey levels).
_LIGHT_NOISE_MAX = 4.0


@functools.lru_cache(maxsize=32)
def _light_noise_bank(amplitude: float) -> np.ndarray:
    """Light noise clipped to [-12, 12], stored as uint8 two's complement for wrap-around
    addition."""
    noise = np.clip(_noise_bank(amplitude), -12, 12).astype(np.int8)
    return noise.view(np.uint8)


def place(
    existing: Sequence[Obj],
    shape: str,
    color: str,
    size: str,
    rng: np.random.Generator,
    region: str | None = None,
    relation: tuple[str, Sequence[Obj]] | None = None,
    aesthetic: float = 0.5,
) -> Obj | None:
    """Find a free spot for a new object, inside ``region`` and honouring ``relation``.

    Returns ``None`` when no free spot satisfies the constraints.
    """
    e = SIZES[size]
    margin = 1 + int(round(2 * aesthetic))
    lo, hi = e // 2 + margin, CANVAS - 1 - e // 2 - margin
    x0, x1, y0, y1 = float(lo), float(hi), float(lo), float(hi)
    if region is not None:
        rx0, rx1, ry0, ry1 = REGIONS[region]
        # Keep one pixel inside the region's half-open box.
        x0, x1 = max(x0, rx0 * CANVAS + 1), min(x1, rx1 * CANVAS - 2)
        y0, y1 = max(y0, ry0 * CANVAS + 1), min(y1, ry1 * CANVAS - 2)
    if relation is not None and relation[1]:
        # Every new object goes beyond the reference group's centre, so the group's
        # centre does too.
        rel, others = relation
        m = RELATION_MARGIN + 1
        cx = sum(o.x for o in others) / len(others)
        cy = sum(o.y for o in others) / len(others)
        if rel == "left of":
            x1 = min(x1, cx - m)
        elif rel == "right of":
            x0 = max(x0, cx + m)
        elif rel == "above":
            y1 = min(y1, cy - m)
        elif rel == "below":
            y0 = max(y0, cy + m)
    if x1 < x0 or y1 < y0:
        return None
    # Scan the allowed box on a 2-pixel grid for every free spot (complete, vectorised).
    xs, ys, idx = free_grid(existing, e, x0, x1, y0, y1, _GAP)
    if idx.size == 0:
        return None
    n_candidates = 1 + int(round(3 * aesthetic))
    k = min(n_candidates, idx.size)
    # For one pick rng.choice(idx, k, replace=False) draws one bounded integer: the same.
    picks = (
        [int(idx[rng.integers(idx.size)])]
        if k == 1
        else rng.choice(idx, size=k, replace=False).tolist()
    )
    gx, gy, nx = int(xs[0]), int(ys[0]), xs.size  # the grid steps by 2 from (gx, gy)
    spots = [(gx + 2 * (i % nx), gy + 2 * (i // nx)) for i in picks]
    if len(spots) > 1:
        # Tidier experts compose: a group's objects stay together and a new group starts
        # near the middle of the allowed box.
        same = [o for o in existing if o.shape == shape and o.color == color]
        if same:
            spots.sort(key=lambda s: min(abs(s[0] - o.x) + abs(s[1] - o.y) for o in same))
        else:
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            spots.sort(key=lambda s: abs(s[0] - mx) + abs(s[1] - my))
    return Obj(shape, color, size, *spots[0])


#: A profile that executes every command exactly (no damage, noise or artefacts): the task
#: generator's solvability check and the exact core of a v1 expert.
PERFECT = SkillProfile(
    presence=1,
    counting=1,
    binding=1,
    spatial=1,
    style=1,
    add=1,
    remove=1,
    recolor=1,
    move=1,
    damage=0,
    artefacts=0,
    noise=0,
    aesthetic=0.0,
)


@dataclass
class _Targets:
    counts: list[tuple[ObjectRef, int]]
    regions: dict[ObjectRef, str]
    relations: dict[ObjectRef, tuple[str, ObjectRef]]
    style: str | None


def _targets(command: Command) -> _Targets:
    """Counts, regions, relations and style the command asks for, in execution order."""
    t = _Targets([], {}, {}, None)
    for c in command.constraints:
        if c.kind == "count":
            t.counts.append((c.subject, c.count))
        elif c.kind == "region":
            t.regions[c.subject] = c.region
        elif c.kind == "relation":
            t.relations[c.subject] = (c.relation, c.other)
        elif c.kind == "background":
            t.style = c.style
    # Relation targets must exist before their subjects are placed; for recolouring, the
    # wanted colour comes first so that the old-coloured objects are recoloured rather
    # than removed.
    if command.kind == "recolor":
        t.counts.sort(key=lambda rc: (rc[0] in t.relations, rc[1] == 0))
    else:
        t.counts.sort(key=lambda rc: rc[0] in t.relations)
    return t


class ShapesExpert(Expert):
    """A simulated text-to-image or image-editing model of the Shapes world.

    Args:
        name: Unique name.
        kind: ``"t2i"`` or ``"i2i"``.
        cost: Simulated seconds of GPU time per call.
        profile: Its skills and failure rates.
        description: One line for the action table.
    """

    def __init__(
        self, name: str, kind: str, cost: float, profile: SkillProfile, description: str = ""
    ):
        if kind not in ("t2i", "i2i"):
            raise ConfigError(f"Expert kind must be 't2i' or 'i2i', got {kind!r}.")
        if cost < 0:
            raise ConfigError(f"Expert cost must be >= 0 seconds, got {cost!r}.")
        self.name, self.kind, self.cost, self.profile, self.description = (
            name,
            kind,
            float(cost),
            profile,
            description,
        )

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
        out, artefact = self._artefacts(out, rng)
        if artefact:
            events.append(artefact)
        return ExpertResult(out, self.cost, {"events": events})

    def edit_scene(
        self, base: Scene, command: Command, rng: np.random.Generator
    ) -> tuple[Scene, list[str]]:
        """Apply ``command`` to the symbolic ``base`` with this expert's skills and failures."""
        e = _Edit(self, base, command, rng)
        t = e.targets
        if t.style is not None and t.style != e.bg and e.roll(self.profile.style, "ignored style"):
            e.bg = t.style
        colors = sorted(
            {r.color for r, n in t.counts if n > 0 and r.color} | {o.color for o in e.objs}
        )
        groups = 0
        for ref, n in t.counts:
            groups += e.count(ref, n, colors, groups)
        e.fix_layout()
        if not e.t2i and self.profile.damage > 0:
            e.damage()
        return Scene(tuple(e.objs), e.bg), e.events

    def _artefacts(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, str | None]:
        p = self.profile
        if rng.random() < p.artefacts:
            out = image.astype(np.int16)
            if rng.random() < 0.5:
                out = ndimage.uniform_filter(out, size=(5, 5, 1))
                event = "blur"
            else:
                out += self._noise(rng, 28.0)
                event = "noise"
            if p.noise > 0:
                out += self._noise(rng, p.noise)
            return np.clip(out, 0, 255).astype(np.uint8), event
        if p.noise <= 0:
            return image, None
        if p.noise <= _LIGHT_NOISE_MAX:
            # Clean pixels lie in [12, 243] and light noise in [-12, 12]: wrap-around uint8
            # addition is exact and saves the int16 round trip.
            return image + self._noise(rng, p.noise, light=True), None
        out = image.astype(np.int16) + self._noise(rng, p.noise)
        return np.clip(out, 0, 255).astype(np.uint8), None

    @staticmethod
    def _noise(rng: np.random.Generator, amplitude: float, light: bool = False) -> np.ndarray:
        oy, ox = rng.integers(0, CANVAS, size=2).tolist()
        bank = _light_noise_bank(float(amplitude)) if light else _noise_bank(float(amplitude))
        return bank[oy : oy + CANVAS, ox : ox + CANVAS]

    # ------------------------------------------------------------------ for oracles
    def success_probability(self, command: Command, scene: Scene) -> float:
        """Probability (from the profile, not from sampling) that this call satisfies
        ``command`` on ``scene``, ignoring placement failures."""
        p = self.profile
        t2i = self.kind == "t2i"
        base = Scene((), "plain") if t2i else scene
        targets = _targets(command)
        prob = 1.0 - p.artefacts
        if targets.style is not None and targets.style != base.background:
            prob *= p.style
        colors = {r.color for r, n in targets.counts if n > 0 and r.color} | {
            o.color for o in base.objects
        }
        groups = 0
        for ref, n in targets.counts:
            cur = len(matching(base.objects, ref))
            if n == 0 or cur > n:
                if cur:
                    prob *= 1.0 if t2i else p.remove
                continue
            need = n - cur
            if need <= 0:
                continue
            if command.kind == "recolor" and not t2i:
                prob *= p.recolor
                continue
            prob *= (p.presence if groups else 1.0) if t2i else p.add
            groups += 1
            prob *= p.counting ** (need - 1)
            if len(colors - {ref.color}) > 0:
                prob *= p.binding
            if ref in targets.regions:
                prob *= p.spatial
            if ref in targets.relations:
                prob *= p.relation
        if not t2i and command.kind == "move":
            prob *= p.move
        return float(prob)

    def preservation_probability(self, command: Command, scene: Scene) -> float:
        """Probability that objects the command is not about survive the call."""
        targets = _targets(command)
        refs = [r for r, _ in targets.counts]
        bystanders = [
            o for o in scene.objects if not any(r.matches(o.shape, o.color, o.size) for r in refs)
        ]
        if self.kind == "t2i":
            # Drawing from scratch loses every bystander and a non-default background.
            loses_style = targets.style is None and scene.background != "plain"
            return 0.0 if (bystanders or loses_style) else 1.0
        return 1.0 - self.profile.damage if bystanders else 1.0


class _Edit:
    """One :meth:`ShapesExpert.edit_scene` call in named steps: the objects so far, the
    failure events, and the ids of the objects the command is about (``touched``) and of
    those drawn by this call (``placed``, already rolled for placement)."""

    def __init__(self, expert: ShapesExpert, base: Scene, command: Command, rng):
        self.p, self.t2i, self.command, self.rng = (
            expert.profile,
            expert.kind == "t2i",
            command,
            rng,
        )
        self.events: list[str] = []
        self.objs, self.bg = list(base.objects), base.background
        self.targets = _targets(command)
        self.touched: set[int] = set()
        self.placed: set[int] = set()

    def roll(self, prob: float, event: str) -> bool:
        ok = bool(self.rng.random() < prob)
        if not ok:
            self.events.append(event)
        return ok

    def count(self, ref: ObjectRef, n: int, colors: list[str], groups: int) -> int:
        """Bring the objects matching ``ref`` to ``n``; 1 if a new group was drawn."""
        current = matching(self.objs, ref)
        if n == 0 or len(current) > n:
            self.remove(current, n)
            return 0
        self.touched.update(id(o) for o in current)
        need = n - len(current)
        if need and self.command.kind == "recolor" and not self.t2i:
            need = self.recolor(ref, need)
        return self.add(ref, need, colors, groups) if need > 0 else 0

    def remove(self, current: list[Obj], n: int) -> None:
        if not current:
            return
        if self.roll(self.p.remove if not self.t2i else 1.0, "failed removal"):
            drop = current if n == 0 else current[: len(current) - n]
        else:
            drop = current[: int(self.rng.integers(0, len(current)))]  # removed too few
        ids = {id(o) for o in drop}
        self.objs = [o for o in self.objs if id(o) not in ids]

    def recolor(self, ref: ObjectRef, need: int) -> int:
        """Recolour the objects the command names in their old colour (the refs it wants
        gone) first, then other same-noun objects not wanted as they are; the count still
        needed (0: the failed recolour adds nothing)."""
        wanted = {r for r, k in self.targets.counts if k > 0}
        unwanted = [r for r, k in self.targets.counts if k == 0]
        spare = [
            o
            for o in self.objs
            if o.shape == ref.noun
            and id(o) not in self.touched
            and not any(w.matches(o.shape, o.color, o.size) for w in wanted)
        ]
        spare.sort(key=lambda o: not any(u.matches(o.shape, o.color, o.size) for u in unwanted))
        if not spare:
            return need
        if not self.roll(self.p.recolor, "failed recolour"):
            return 0
        for o in spare[:need]:
            i = self.objs.index(o)
            self.objs[i] = Obj(o.shape, ref.color or o.color, ref.size or o.size, o.x, o.y)
            self.touched.add(id(self.objs[i]))
        return need - min(need, len(spare))

    def add(self, ref: ObjectRef, need: int, colors: list[str], groups: int) -> int:
        """Draw ``need`` objects for ``ref`` (with the expert's failures); 1 if drawn."""
        p, rng = self.p, self.rng
        if self.t2i:
            if groups > 0 and not self.roll(p.presence, "dropped object"):
                return 0
        elif not self.roll(p.add, "failed addition"):
            return 0
        if need > 1 and not self.roll(p.counting ** (need - 1), "miscount"):
            need = max(1, need + int(rng.choice([-1, 1])))
        color = ref.color or str(rng.choice(list(COLORS)))
        others = [c for c in colors if c != color]
        if others and not self.roll(p.binding, "colour leak"):
            color = str(rng.choice(others))
        size = ref.size or ("medium" if rng.random() < 0.6 else "small")
        region, rel = self.where(ref)
        for _ in range(need):
            relation = (rel[0], matching(self.objs, rel[1])) if rel else None
            obj = place(self.objs, ref.noun, color, size, rng, region, relation, p.aesthetic)
            if obj is None:
                self.events.append("no room")
                continue
            self.objs.append(obj)
            self.touched.add(id(obj))
            self.placed.add(id(obj))
        return 1

    def where(self, ref: ObjectRef) -> tuple[str | None, tuple[str, ObjectRef] | None]:
        """The region and relation new ``ref`` objects go to, after the spatial roll."""
        region = self.targets.regions.get(ref)
        rel = self.targets.relations.get(ref)
        if region is None and rel is None:
            return None, None
        prob = (self.p.spatial if region is not None else 1.0) * (
            self.p.relation if rel is not None else 1.0
        )
        if self.roll(prob, "misplaced"):
            return region, rel
        # The classic failures: the wrong region, or left/right and above/below swapped.
        if region is not None:
            wrong = [r for r in REGIONS if r != region]
            region = wrong[int(self.rng.integers(len(wrong)))]
        if rel is not None:
            rel = (_OPPOSITE[rel[0]], rel[1])
        return region, rel

    def fix_layout(self) -> None:
        """Move objects that break their region or relation."""
        t = self.targets
        # dict.fromkeys keeps a fixed order; iterating a set of refs would follow string
        # hashing, which differs between processes and would break reproducibility.
        for ref in dict.fromkeys([*t.regions, *t.relations]):
            region, rel = t.regions.get(ref), t.relations.get(ref)
            group_ok = rel is None or relation_holds(
                matching(self.objs, ref), rel[0], matching(self.objs, rel[1])
            )
            for o in matching(self.objs, ref):
                if id(o) in self.placed:
                    continue
                ok_region = region is None or in_region(o.x, o.y, region)
                if ok_region and (
                    group_ok or relation_holds([o], rel[0], matching(self.objs, rel[1]))
                ):
                    continue
                self.move(o, region, rel)

    def move(self, o: Obj, region: str | None, rel: tuple[str, ObjectRef] | None) -> None:
        p = self.p
        skill = (
            (p.spatial if rel is None else p.relation)
            if (self.t2i or self.command.kind != "move")
            else p.move
        )
        if not self.roll(skill, "failed move"):
            return
        rest = [q for q in self.objs if q is not o]
        relation = (rel[0], matching(rest, rel[1])) if rel else None
        new = place(rest, o.shape, o.color, o.size, self.rng, region, relation, p.aesthetic)
        if new is not None:
            self.objs[self.objs.index(o)] = new
            self.touched.add(id(new))

    def damage(self) -> None:
        """Maybe disturb one bystander (an object the command is not about)."""
        rng, objs = self.rng, self.objs
        bystanders = [o for o in objs if id(o) not in self.touched]
        if not bystanders or rng.random() >= self.p.damage:
            return
        victim = bystanders[int(rng.integers(len(bystanders)))]
        i = objs.index(victim)
        how = int(rng.integers(3))
        if how == 0:
            objs.pop(i)
            self.events.append("damaged: removed an object")
        elif how == 1:
            color = str(rng.choice([c for c in COLORS if c != victim.color]))
            objs[i] = Obj(victim.shape, color, victim.size, victim.x, victim.y)
            self.events.append("damaged: recoloured an object")
        else:
            new = place(objs[:i] + objs[i + 1 :], victim.shape, victim.color, victim.size, rng)
            if new is not None:
                objs[i] = new
            self.events.append("damaged: moved an object")


def _t2i(name, cost, desc, **skills) -> ShapesExpert:
    return ShapesExpert(name, "t2i", cost, SkillProfile(**skills), desc)


def _i2i(name, cost, desc, **skills) -> ShapesExpert:
    base = dict(presence=1.0, counting=0.8, binding=0.8, spatial=0.7, style=0.15, artefacts=0.02)
    base.update(skills)
    return ShapesExpert(name, "i2i", cost, SkillProfile(**base), desc)


def default_experts() -> tuple[ShapesExpert, ...]:
    """The default pool of 12 experts (6 text-to-image, 6 image-to-image)."""
    return (
        _t2i(
            "sketch-turbo",
            0.5,
            "Few-step sketcher: fast and cheap, sloppy counts and layout, noisy.",
            presence=0.85,
            counting=0.55,
            binding=0.55,
            spatial=0.45,
            style=0.5,
            artefacts=0.25,
            noise=4.0,
            aesthetic=0.2,
        ),
        _t2i(
            "count-master",
            2.0,
            "Counts objects exactly; mixes up colours and ignores layout.",
            presence=0.97,
            counting=0.99,
            binding=0.45,
            spatial=0.35,
            style=0.35,
            artefacts=0.03,
            noise=1.5,
            aesthetic=0.5,
        ),
        _t2i(
            "color-binder",
            2.0,
            "Binds colours to the right objects; poor at counting.",
            presence=0.97,
            counting=0.45,
            binding=0.99,
            spatial=0.45,
            style=0.5,
            artefacts=0.03,
            noise=1.5,
            aesthetic=0.6,
        ),
        _t2i(
            "layout-planner",
            3.0,
            "Places objects where asked (regions, relations); weak colours, no style.",
            presence=0.98,
            counting=0.8,
            binding=0.45,
            spatial=0.99,
            style=0.15,
            artefacts=0.03,
            noise=1.0,
            aesthetic=0.9,
        ),
        _t2i(
            "style-painter",
            2.5,
            "Renders background styles faithfully and prettily; careless with counts.",
            presence=0.9,
            counting=0.5,
            binding=0.7,
            spatial=0.4,
            style=0.99,
            artefacts=0.02,
            noise=0.5,
            aesthetic=1.0,
        ),
        _t2i(
            "generalist-xl",
            6.0,
            "Large generalist: decent at everything, slow and expensive.",
            presence=0.9,
            counting=0.6,
            binding=0.6,
            spatial=0.6,
            style=0.6,
            artefacts=0.05,
            noise=1.0,
            aesthetic=0.8,
        ),
        _i2i(
            "object-adder",
            1.5,
            "Inpainting adder: inserts objects in named regions; imprecise next to other objects.",
            add=0.99,
            counting=0.97,
            binding=0.97,
            spatial=0.97,
            relation=0.55,
            remove=0.1,
            recolor=0.1,
            move=0.2,
            damage=0.03,
            noise=1.0,
        ),
        _i2i(
            "object-eraser",
            1.0,
            "Eraser: removes objects cleanly; poor at everything else.",
            add=0.15,
            remove=0.99,
            recolor=0.1,
            move=0.1,
            damage=0.02,
            noise=1.0,
        ),
        _i2i(
            "recolorist",
            1.5,
            "Instruction editor for colours; poor at other edits.",
            add=0.3,
            remove=0.3,
            recolor=0.99,
            move=0.2,
            style=0.5,
            damage=0.02,
            noise=1.5,
        ),
        _i2i(
            "object-mover",
            2.0,
            "Drag-style layout editor: moves objects precisely and inserts objects next to others.",
            add=0.7,
            counting=0.85,
            binding=0.95,
            remove=0.2,
            recolor=0.1,
            move=0.99,
            spatial=0.99,
            relation=0.99,
            damage=0.02,
            noise=1.0,
        ),
        _i2i(
            "restyler",
            1.5,
            "Background restyler: faithful styles, rarely disturbs objects.",
            add=0.1,
            remove=0.1,
            recolor=0.2,
            move=0.1,
            style=0.99,
            damage=0.02,
            noise=1.0,
        ),
        _i2i(
            "edit-generalist",
            5.0,
            "General instruction editor: does every edit passably, slow, some damage.",
            add=0.55,
            remove=0.6,
            recolor=0.55,
            move=0.5,
            style=0.55,
            counting=0.7,
            binding=0.7,
            spatial=0.6,
            damage=0.15,
            artefacts=0.06,
            noise=2.0,
        ),
    )


assert len(SHAPES) >= 6
