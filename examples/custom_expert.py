"""Add your own experts to the real-model suite, register the result, and run an episode.

Two kinds of custom expert are shown:

* ``TintExpert`` - any :class:`poser_env.Expert` subclass works. This one needs no model:
  it edits the image with PIL, shifting it towards the colour the command names.
* ``KindAwareImg2Img`` - a :class:`~poser_env.suites.diffusers.experts.DiffusersExpert`
  subclass that changes how the pipeline is called (a higher SDEdit ``strength`` for
  restyling commands) and shares the suite's pipeline loader, so it adds no weights.

Both are added to the ``"diffusers"`` suite, which is registered under a new name with
``register_suite`` (and also passed to ``gym.make`` as a ``Suite`` instance). The example
uses the tiny random models of ``poser_env.suites.diffusers.testing`` so that it runs on a
CPU in seconds without downloads; their images are noise. For real models, drop
``tiny_models`` and call ``make_diffusers_suite`` with the default pool.

    HF_HUB_OFFLINE=1 python examples/custom_expert.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tiny models are local: never touch the hub

import gymnasium as gym  # noqa: E402

import poser_env  # noqa: E402 - registers ImagePoser-v0
from poser_env import Command, Expert, ExpertResult, Suite, register_suite  # noqa: E402

#: The colours TintExpert understands, as RGB.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 40),
    "orange": (245, 140, 30),
    "purple": (140, 60, 180),
    "pink": (240, 130, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "brown": (120, 80, 40),
}


class TintExpert(Expert):
    """Shifts the whole image towards the first colour named in the command (PIL, no model).

    Deterministic, so ``seed`` is unused; an expert that samples must draw only from
    ``seed`` so that the environment stays reproducible.

    Args:
        amount: Blend weight of the colour, in (0, 1].
    """

    kind = "i2i"  # edits the current image; invalid before there is one

    def __init__(self, name: str = "pil-tint", amount: float = 0.35, cost: float = 0.01):
        if not 0.0 < amount <= 1.0:
            raise ValueError(f"amount must be in (0, 1], got {amount}.")
        self.name = name
        self.amount = float(amount)
        self.cost = float(cost)  # nominal seconds per call: feeds the reward's cost penalty
        self.description = "Tints the image towards the colour the command names (PIL)."

    def __call__(self, command: Command, image: np.ndarray | None, seed: int) -> ExpertResult:
        from PIL import Image, ImageOps

        if image is None:
            raise ValueError(f"Expert {self.name!r} edits an image but got image=None.")
        words = command.text.lower().replace(",", " ").replace(".", " ").split()
        colour = next((w for w in words if w in COLOURS), None)
        pil = Image.fromarray(image)
        if colour is None:
            out = ImageOps.autocontrast(pil)  # no colour named: a neutral touch-up
        else:
            out = Image.blend(pil, Image.new("RGB", pil.size, COLOURS[colour]), self.amount)
        # The env checks that experts return (H, W, 3) uint8 arrays of the suite's size.
        return ExpertResult(
            image=np.asarray(out, dtype=np.uint8).copy(), cost=self.cost, meta={"colour": colour}
        )


def kind_aware_img2img_class() -> type:
    """Defined in a function so that importing this file needs no torch or diffusers."""
    from poser_env.suites.diffusers.experts import Image2ImageExpert

    class KindAwareImg2Img(Image2ImageExpert):
        """SDEdit that re-noises more for restyling commands than for small edits."""

        def call_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
            kwargs = super().call_kwargs(command, image)
            if command.kind == "restyle":
                kwargs["strength"] = max(kwargs["strength"], 0.8)
            return kwargs

    return KindAwareImg2Img


def make_custom_suite(**diffusers_kwargs: Any) -> Suite:
    """The 'diffusers' suite plus the two custom experts (a suite factory for ``register_suite``)."""
    from poser_env.suites.diffusers import make_diffusers_suite

    base = make_diffusers_suite(**diffusers_kwargs)
    loader = base.experts[0].loader  # one pipeline loader per suite: share it, never load twice
    sdedit = next(e for e in base.experts if e.spec.family == "image2image")
    restyler = kind_aware_img2img_class()(
        sdedit.spec.with_overrides(name="kind-aware-img2img"), loader, output_size=base.image_size
    )
    return Suite(
        name="diffusers-custom",
        experts=[*base.experts, TintExpert(), restyler],
        critic=base.critic,
        extractor=base.extractor,
        tasks=base.tasks,
        image_size=base.image_size,
    )


def tiny_models(folder: Path) -> dict[str, Any]:
    """Suite arguments for the tiny random models (built in ``folder``, a few seconds)."""
    from poser_env.suites.diffusers.testing import save_tiny_vlm, tiny_pool

    specs = tiny_pool(folder / "experts")
    return {
        "catalog": [s.to_dict() for s in specs],
        "experts": ["tiny-t2i", "tiny-img2img"],
        "critic": "vlm",
        "critic_kwargs": {"model": str(save_tiny_vlm(folder / "vlm")), "reflection": "template"},
        "extractor": "rules",
        "device": "cpu",
        "image_size": (32, 32),
    }


def run_episode(env: gym.Env, seed: int) -> list[str]:
    """Play one episode, calling every custom expert once there is an image; return a log."""
    names = env.unwrapped.expert_names
    plan = ["tiny-t2i", "pil-tint", "kind-aware-img2img", "pil-tint"]
    prompt = (
        "A white cat on a sofa. Then make the sofa red. "
        "After that, restyle the image as a watercolor painting. Finally, make the cat blue."
    )
    obs, info = env.reset(seed=seed, options={"prompt": prompt})
    log = [f"commands: {poser_env.read_details(info)['commands']}"]
    for step, name in enumerate(plan):
        action = names.index(name)
        assert obs["action_mask"][action], f"{name} is not valid yet"
        obs, reward, terminated, truncated, info = env.step(action)
        if info["error"]:
            raise RuntimeError(info["error"])
        log.append(
            f"step {step}: {name:<18} on {info['command']!r:<50} reward {reward:+.3f} accepted={info['accepted']}"
        )
        if terminated or truncated:
            break
    return log


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = tiny_models(Path(tmp))

        # 1. Register the factory under a name: gym.make and vector envs can then build it
        #    from keyword arguments alone.
        register_suite(
            "diffusers-custom", make_custom_suite, description="diffusers suite + custom experts"
        )
        env = gym.make(
            "ImagePoser-v0", suite="diffusers-custom", suite_kwargs=kwargs, image_size=(32, 32)
        )
        print("actions:", env.unwrapped.expert_names)
        print("\n".join(run_episode(env, seed=0)))
        env.close()

        # 2. Or pass a Suite instance directly (no registration, nothing to pickle by name).
        env = gym.make("ImagePoser-v0", suite=make_custom_suite(**kwargs), image_size=(32, 32))
        print("\n".join(run_episode(env, seed=0)[1:]))
        env.close()


if __name__ == "__main__":
    main()
