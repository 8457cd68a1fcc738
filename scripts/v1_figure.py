"""Draw the picture of the v1 skill model for docs/environment.md: one recolour command
("make the red circle blue") on four images, and every editor's chance of doing it
without harming the rest (P(success) * P(bystanders kept), from the skill model).

    python scripts/v1_figure.py --out docs/images/v1_skills.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.suites.shapes.scene import Obj, Scene, render
from poser_env.suites.shapes.skills import v1_experts

RED, BLUE = ObjectRef("circle", "red"), ObjectRef("circle", "blue")
COMMAND = Command(
    "make the red circle blue",
    "recolor",
    (Constraint("count", subject=RED, count=0), Constraint("count", subject=BLUE, count=1)),
)


def scenes() -> dict[str, Scene]:
    far = Obj("square", "green", "medium", 104, 40)
    near = Obj("square", "green", "medium", 60, 64)
    return {
        "plain, alone": Scene((Obj("circle", "red", "medium", 40, 64), far), "plain"),
        "plain, neighbour close": Scene((Obj("circle", "red", "medium", 40, 64), near), "plain"),
        "striped, alone": Scene((Obj("circle", "red", "medium", 40, 64), far), "striped"),
        "dotted, small target": Scene((Obj("circle", "red", "small", 40, 64), far), "dotted"),
    }


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/images/v1_skills.png"))
    args = ap.parse_args(argv)
    editors = [e for e in v1_experts() if e.kind == "i2i"]
    cases = scenes()
    values = np.array(
        [
            [
                e.success_probability(COMMAND, s) * e.preservation_probability(COMMAND, s)
                for s in cases.values()
            ]
            for e in editors
        ]
    )
    fig = plt.figure(figsize=(9, 6.2))
    grid = fig.add_gridspec(2, len(cases), height_ratios=[1, 1.5])
    for j, (title, scene) in enumerate(cases.items()):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(render(scene))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(editors)), [e.name for e in editors])
    ax.set_xticks(range(len(cases)), list(cases))
    for i in range(len(editors)):
        for j in range(len(cases)):
            v = values[i, j]
            bold = v == values[:, j].max()
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                color="black" if v > 0.6 else "white",
                fontweight="bold" if bold else "normal",
            )
    ax.set_title(
        '"make the red circle blue": P(success) x P(bystanders kept) per editor (best in bold)',
        fontsize=10,
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
