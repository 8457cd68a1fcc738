"""Diffusers experts: one class per pipeline family, configured by an :class:`ExpertSpec`.

Every expert asks the shared :class:`~poser_env.suites.diffusers.loader.PipelineLoader` for its
pipeline at call time (so nothing loads before it is used), seeds a fresh CPU
``torch.Generator`` per call (the same seed gives the same image on CPU and on CUDA), and
returns a ``uint8`` image resized to the suite's image size.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from poser_env.components import Expert, ExpertResult
from poser_env.constraints import Command
from poser_env.error import ConfigError
from poser_env.suites.diffusers.loader import PipelineLoader
from poser_env.suites.diffusers.models import ExpertSpec


def to_pil(image: np.ndarray, size: tuple[int, int]) -> Any:
    """``(H, W, 3)`` uint8 array to a PIL image of ``size`` = ``(height, width)``."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"Expected an (H, W, 3) uint8 image, got shape {image.shape} and dtype {image.dtype}."
        )
    pil = Image.fromarray(image)
    if pil.size != (size[1], size[0]):
        pil = pil.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return pil


def to_uint8(image: Any, size: tuple[int, int] | None) -> np.ndarray:
    """A pipeline output (float array in [0, 1] or PIL image) as ``(H, W, 3)`` uint8 of ``size``."""
    from PIL import Image

    if isinstance(image, Image.Image):
        pil = image.convert("RGB")
    else:
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(
                f"Pipeline returned an image of shape {arr.shape}; expected (H, W, 3)."
            )
        if not np.isfinite(arr).all():
            raise ValueError(
                "Pipeline returned NaN or infinite pixels (fp16 overflow? try dtype='bfloat16')."
            )
        pixels = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
        if size is None or pixels.shape[:2] == tuple(size):
            return pixels  # already a fresh array: no PIL round trip
        pil = Image.fromarray(pixels)
    if size is not None and pil.size != (size[1], size[0]):
        pil = pil.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(pil, dtype=np.uint8).copy()


_ACCEPTED: dict[type, frozenset[str]] = {}


def accepted_arguments(pipe: Any) -> frozenset[str]:
    """Names of the keyword arguments ``pipe.__call__`` takes (looked up once per class)."""
    cls = type(pipe)
    names = _ACCEPTED.get(cls)
    if names is None:
        names = _ACCEPTED[cls] = frozenset(inspect.signature(pipe.__call__).parameters)
    return names


class DiffusersExpert(Expert):
    """Base class: calls a diffusers pipeline from the shared loader.

    Subclasses say which arguments their pipeline family takes (:meth:`call_kwargs`).

    Args:
        spec: What to load and how to call it.
        loader: The shared pipeline loader (one per process; experts never own pipelines).
        output_size: ``(height, width)`` of returned images; ``None`` keeps the model's size.
    """

    family: str = ""

    def __init__(
        self, spec: ExpertSpec, loader: PipelineLoader, output_size: tuple[int, int] | None = None
    ):
        if self.family and spec.family != self.family:
            raise ConfigError(
                f"{type(self).__name__} runs family {self.family!r}, got spec {spec.name!r} of family {spec.family!r}; "
                "use make_expert(spec, loader) to pick the class."
            )
        self.spec = spec
        self.loader = loader
        self.output_size = tuple(output_size) if output_size is not None else None
        self.name = spec.name
        self.kind = spec.kind  # type: ignore[assignment]
        self.cost = float(spec.cost)
        self.description = spec.description

    def prompt(self, command: Command) -> str:
        """The text the pipeline receives."""
        return f"{command.text}{self.spec.prompt_suffix}"

    def call_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
        """Family-specific pipeline arguments (prompt, image, strength...)."""
        raise NotImplementedError

    def pipeline_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
        """Every pipeline argument of one call but the generator."""
        if self.kind == "i2i" and image is None:
            raise ValueError(
                f"Expert {self.name!r} edits an existing image but got image=None; call a 't2i' expert first."
            )
        spec = self.spec
        kwargs = self.call_kwargs(command, image)
        kwargs.update(
            num_inference_steps=spec.steps, guidance_scale=spec.guidance, output_type="np"
        )
        if spec.negative_prompt and spec.guidance > 1.0:
            kwargs["negative_prompt"] = spec.negative_prompt
        kwargs.update(spec.call_kwargs)
        return kwargs

    def __call__(self, command: Command, image: np.ndarray | None, seed: int) -> ExpertResult:
        return self._results(self.pipeline_kwargs(command, image), [seed])[0]

    #: Pipeline arguments that differ between the calls of a batch and become lists.
    BATCHED_ARGUMENTS = ("prompt", "negative_prompt", "image")

    def call_batch(self, calls: Any) -> list[ExpertResult]:
        """One pipeline call for the whole batch when ``spec.batch`` is set, else one by one."""
        if not self.spec.batch or len(calls) < 2:
            return super().call_batch(calls)
        per_call = [self.pipeline_kwargs(command, image) for command, image, _ in calls]
        merged = dict(per_call[0])
        for key in self.BATCHED_ARGUMENTS:
            if key in merged:
                merged[key] = [kwargs[key] for kwargs in per_call]
        # Everything else comes from the spec, so it is the same for every call.
        assert all(kw.keys() == per_call[0].keys() for kw in per_call)
        return self._results(merged, [seed for _, _, seed in calls])

    def raw_images(self, kwargs: dict[str, Any], seeds: list[int]) -> Any:
        """The pipeline's own output images for one call (float arrays in [0, 1] at the model's size).

        ``kwargs`` come from :meth:`pipeline_kwargs`; one CPU generator per seed is added.
        ``scripts/gpu_smoke.py`` times this (pipeline-only latency) and checks its pixels.
        """
        import torch

        spec = self.spec
        with self.loader.lock:
            pipe = self.loader.get(spec)
            accepted = accepted_arguments(pipe)
            for optional in ("negative_prompt", "height", "width"):
                if optional in kwargs and optional not in accepted:
                    del kwargs[optional]
            # A CPU generator per image: reproducible for a seed on any device, and no
            # state shared between calls or threads.
            generators = [torch.Generator("cpu").manual_seed(int(seed) % (2**63)) for seed in seeds]
            kwargs["generator"] = generators[0] if len(generators) == 1 else generators
            with torch.inference_mode():
                out = pipe(**kwargs)
        images = out.images if hasattr(out, "images") else out[0]
        if len(images) != len(seeds):
            raise ValueError(
                f"Pipeline of expert {self.name!r} returned {len(images)} images for {len(seeds)} requests."
            )
        return images

    def _results(self, kwargs: dict[str, Any], seeds: list[int]) -> list[ExpertResult]:
        spec = self.spec
        images = self.raw_images(kwargs, seeds)
        meta = {"model": spec.model, "family": spec.family, "steps": spec.steps}
        return [
            ExpertResult(
                image=to_uint8(image, self.output_size),
                cost=self.cost,
                meta={**meta, "seed": int(seed)},
            )
            for image, seed in zip(images, seeds, strict=True)
        ]

    def place(self, device: str, gpu_share: float = 1.0) -> None:
        """Pin the expert's pipeline loader to the device of the Ray replica it runs in.

        Called by :func:`poser_env.pools.ray_pool.place_component`; see
        :meth:`PipelineLoader.place`.
        """
        self.loader.place(device, gpu_share)

    #: Deprecated name of :attr:`loader` (in image-poser a *pool* is where components run).
    pool = property(lambda self: self.loader)

    def close(self) -> None:
        """Experts hold no weights; the loader owns them (``loader.clear()`` frees memory)."""


class Text2ImageExpert(DiffusersExpert):
    """Draws from the prompt alone (``AutoPipelineForText2Image``)."""

    family = "text2image"

    def call_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
        h, w = self.spec.resolution
        return {"prompt": self.prompt(command), "height": h, "width": w}


class Image2ImageExpert(DiffusersExpert):
    """Re-noises the current image and denoises it towards the prompt (SDEdit; ``strength``)."""

    family = "image2image"

    def call_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
        return {
            "prompt": self.prompt(command),
            "image": to_pil(image, self.spec.resolution),
            "strength": self.spec.strength,
        }


class InstructPix2PixExpert(DiffusersExpert):
    """Follows an edit instruction (``StableDiffusionInstructPix2PixPipeline``, MagicBrush)."""

    family = "instruct_pix2pix"

    def call_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "prompt": self.prompt(command),
            "image": to_pil(image, self.spec.resolution),
        }
        if self.spec.image_guidance is not None:
            kwargs["image_guidance_scale"] = self.spec.image_guidance
        return kwargs


class InstructionEditExpert(DiffusersExpert):
    """In-context instruction editors that take height/width (FLUX.1-Kontext, Qwen-Image-Edit)."""

    family = "instruction_edit"

    def call_kwargs(self, command: Command, image: np.ndarray | None) -> dict[str, Any]:
        h, w = self.spec.resolution
        return {
            "prompt": self.prompt(command),
            "image": to_pil(image, self.spec.resolution),
            "height": h,
            "width": w,
        }


EXPERT_CLASSES: dict[str, type[DiffusersExpert]] = {
    cls.family: cls
    for cls in (Text2ImageExpert, Image2ImageExpert, InstructPix2PixExpert, InstructionEditExpert)
}


def make_expert(
    spec: ExpertSpec, loader: PipelineLoader, output_size: tuple[int, int] | None = None
) -> DiffusersExpert:
    """The expert class for ``spec.family``, built on ``loader``."""
    return EXPERT_CLASSES[spec.family](spec, loader, output_size=output_size)
