"""Expert specifications and the default catalog of 12 public models.

An :class:`ExpertSpec` is a small frozen description of one action of the environment: which
weights to load (a hub id or a local folder), through which diffusers pipeline class, and
how to call it. Specs are plain values; nothing here imports torch or diffusers, so the
table can be read (and documented) on any machine.

The numbers in :data:`DEFAULT_CATALOG` come from the model cards (parameter counts, licences,
recommended steps and guidance). ``memory_gb`` is the size of the weights at the listed
dtype, estimated from parameter counts (2 bytes per parameter); it is what the pipeline
loader's memory budget uses before a model has been loaded. ``activation_gb`` (one call's
peak above the weights) and ``offload_gb`` (the largest component, for ``cpu_offload``) are
estimates too. None of these was **measured** on a GPU for this release;
``scripts/gpu_smoke.py`` measures them (``memory:<group>`` checks) and the memory plan
(:mod:`poser_env.suites.diffusers.memory`) is computed from them. ``cost`` is a nominal
relative cost (roughly seconds per call on one H100 at the listed settings), also an
estimate; it only feeds the reward's cost penalty and must be deterministic, so it is never
a measured latency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from poser_env.error import ConfigError, UnknownArgumentError

#: How an expert calls its pipeline (see :mod:`poser_env.suites.diffusers.experts`).
Family = Literal["text2image", "image2image", "instruct_pix2pix", "instruction_edit"]
FAMILIES: tuple[str, ...] = ("text2image", "image2image", "instruct_pix2pix", "instruction_edit")
_T2I_FAMILIES = frozenset({"text2image"})

#: Pipeline class names that the pool may load. Each is checked against the installed
#: diffusers in ``tests/suites/diffusers/test_models.py``.
KNOWN_PIPELINES: tuple[str, ...] = (
    "AutoPipelineForText2Image",
    "AutoPipelineForImage2Image",
    "StableDiffusionInstructPix2PixPipeline",
    "StableDiffusionXLInstructPix2PixPipeline",
    "FluxKontextPipeline",
    "QwenImageEditPipeline",
    "StableDiffusionXLImg2ImgPipeline",
)


@dataclass(frozen=True)
class ExpertSpec:
    """How to build and call one diffusers expert.

    Attributes:
        name: Unique action name ("sdxl-turbo").
        model: Hub id ("stabilityai/sdxl-turbo") or a local folder written by
            ``save_pretrained``. Experts with the same ``model`` share weights: the first
            one loaded owns them, the others are built with ``from_pipe`` (no extra memory).
        family: How the pipeline is called: ``"text2image"`` (prompt only),
            ``"image2image"`` (SDEdit-style, ``strength``), ``"instruct_pix2pix"``
            (``image_guidance_scale``) or ``"instruction_edit"`` (FLUX.1-Kontext,
            Qwen-Image-Edit: image plus instruction, with height/width).
        pipeline: diffusers class name used to load or derive the pipeline
            (``"AutoPipelineForText2Image"``, ``"StableDiffusionInstructPix2PixPipeline"``...).
        steps: ``num_inference_steps``.
        guidance: ``guidance_scale`` (0 disables classifier-free guidance for distilled models).
        strength: ``strength`` for ``"image2image"`` (fraction of the schedule re-run).
        image_guidance: ``image_guidance_scale`` for ``"instruct_pix2pix"``.
        resolution: ``(height, width)`` the model works at; inputs are resized to it and
            outputs resized to the suite's image size.
        dtype: ``"float16"``, ``"bfloat16"`` or ``"float32"``. Half precision falls back
            to float32 on CPU (fp16 does not run there).
        variant: Weight file variant to load ("fp16"), or ``None``.
        cpu_offload: Use ``enable_model_cpu_offload()`` on CUDA (slower, far less memory).
        compile: Wrap the denoiser (``unet``/``transformer``) in ``torch.compile``.
        memory_gb: Estimated resident size of the weights in GB, used for the memory
            budget before loading (after loading the measured parameter size is used).
        activation_gb: Estimated GPU memory one call needs above the weights (latents,
            attention, VAE decode at ``resolution``), in GB. Only one expert runs at a
            time, so the memory plan reserves the largest of these once
            (:mod:`poser_env.suites.diffusers.memory`).
        offload_gb: GPU memory a ``cpu_offload`` pipeline holds while it runs: its largest
            component (the denoiser or the T5 encoder), which
            ``enable_model_cpu_offload`` moves onto the GPU one at a time. ``None``:
            ``memory_gb`` (the safe upper bound). The pool keeps this much of its budget
            free for the offloaded expert.
        gated: The hub repository is gated: loading needs a Hugging Face token
            (``hf auth login`` or ``HF_TOKEN``) of an account that accepted the licence on
            the model page.
        needs: Python packages the checkpoint's tokenizers need beyond torch, diffusers and
            transformers (``("sentencepiece",)`` for a T5 encoder shipped as
            ``spiece.model``); checked when the suite is built.
        cost: Nominal cost per call in seconds (feeds the reward's cost penalty).
        licence: Licence of the weights, from the model card.
        description: One line for tables.
        prompt_suffix: Text appended to the command (e.g. a quality hint).
        negative_prompt: Passed when the pipeline uses classifier-free guidance.
        call_kwargs: Extra keyword arguments for the pipeline call
            (``{"max_sequence_length": 256}``).
        batch: Run a batch of requests (the Ray pool's per-expert batches,
            ``Expert.call_batch``) as one pipeline call with lists of prompts, images and
            generators. Faster on a GPU; an image may then differ from a one-by-one call in
            the last bits (batched kernels round differently), so it is off by default.
    """

    name: str
    model: str
    family: Family
    pipeline: str
    steps: int
    guidance: float
    strength: float | None = None
    image_guidance: float | None = None
    resolution: tuple[int, int] = (512, 512)
    dtype: str = "float16"
    variant: str | None = None
    cpu_offload: bool = False
    compile: bool = False
    memory_gb: float = 0.0
    activation_gb: float = 0.0
    offload_gb: float | None = None
    gated: bool = False
    needs: tuple[str, ...] = ()
    cost: float = 1.0
    licence: str = ""
    description: str = ""
    prompt_suffix: str = ""
    negative_prompt: str | None = None
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    batch: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(
                f"ExpertSpec {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}."
            )
        if self.dtype not in ("float16", "bfloat16", "float32"):
            raise ConfigError(
                f"ExpertSpec {self.name!r}: dtype must be 'float16', 'bfloat16' or 'float32', got {self.dtype!r}."
            )
        if self.steps < 1:
            raise ConfigError(f"ExpertSpec {self.name!r}: steps must be >= 1, got {self.steps}.")
        if self.family == "image2image":
            if self.strength is None or not 0.0 < self.strength <= 1.0:
                raise ConfigError(
                    f"ExpertSpec {self.name!r}: an 'image2image' expert needs 0 < strength <= 1, got {self.strength!r}."
                )
            if int(self.steps * self.strength) < 1:
                raise ConfigError(
                    f"ExpertSpec {self.name!r}: steps * strength must be >= 1 or the pipeline runs no step; "
                    f"got steps={self.steps}, strength={self.strength}. "
                    f"Raise steps to at least {int(1 / self.strength + 0.999)}."
                )
        if len(self.resolution) != 2 or min(self.resolution) < 8:
            raise ConfigError(
                f"ExpertSpec {self.name!r}: resolution must be (height, width) >= 8, got {self.resolution!r}."
            )
        object.__setattr__(self, "resolution", tuple(int(v) for v in self.resolution))
        object.__setattr__(self, "needs", tuple(self.needs))
        for field_name in ("memory_gb", "activation_gb"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(
                    f"ExpertSpec {self.name!r}: {field_name} must be a number >= 0 (GB), got {value!r}."
                )
        if self.offload_gb is not None and not (
            isinstance(self.offload_gb, (int, float)) and self.offload_gb >= 0
        ):
            raise ConfigError(
                f"ExpertSpec {self.name!r}: offload_gb must be None or a number >= 0 (GB), got {self.offload_gb!r}."
            )

    @property
    def resident_gb(self) -> float:
        """GB of the pool's budget this expert's weights take while loaded (``offload_gb`` when offloaded)."""
        if self.cpu_offload:
            return float(self.memory_gb if self.offload_gb is None else self.offload_gb)
        return float(self.memory_gb)

    @property
    def kind(self) -> str:
        """``"t2i"`` or ``"i2i"``, the expert kind the environment sees."""
        return "t2i" if self.family in _T2I_FAMILIES else "i2i"

    def with_overrides(self, **changes: Any) -> ExpertSpec:
        """A copy with some fields changed (``spec.with_overrides(steps=2)``).

        Raises:
            UnknownArgumentError: a key is not a field (names the closest field and lists all).
        """
        _check_fields(changes, f"ExpertSpec {self.name!r} overrides")
        if "resolution" in changes:
            changes = {**changes, "resolution": tuple(changes["resolution"])}
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExpertSpec:
        """Build a spec from a dict (e.g. parsed YAML); unknown keys are an error."""
        _check_fields(d, f"ExpertSpec {d.get('name', '?')!r}")
        d = dict(d)
        if "resolution" in d:
            d["resolution"] = tuple(d["resolution"])
        if "needs" in d:
            d["needs"] = tuple(d["needs"])
        return cls(**d)


def _check_fields(d: dict[str, Any], where: str) -> None:
    """Raise :class:`UnknownArgumentError` for the first key of ``d`` that is not an ExpertSpec field."""
    known = ExpertSpec.__dataclass_fields__
    for key in d:
        if key not in known:
            raise UnknownArgumentError(where, key, known)


_NEG = "blurry, low quality, distorted, deformed, watermark, text artifacts"

#: The default catalog: 5 text-to-image and 7 image-to-image experts (12 actions, as in the
#: paper). Chosen for complementary strengths: few-step drafts (SD-Turbo, SDXL-Turbo,
#: FLUX.1-schnell), strong composition and long-prompt following through a T5 encoder
#: (SD3.5-Medium, PixArt-Sigma), instruction editors (InstructPix2Pix, MagicBrush,
#: FLUX.1-Kontext), SDEdit-style restylers that share weights with a T2I expert, and the
#: SDXL refiner. Licences and sizes are from the model cards; check them before use.
DEFAULT_CATALOG: tuple[ExpertSpec, ...] = (
    # --- text to image -------------------------------------------------------------------
    ExpertSpec(
        name="sd-turbo",
        model="stabilityai/sd-turbo",
        family="text2image",
        pipeline="AutoPipelineForText2Image",
        steps=1,
        guidance=0.0,
        resolution=(512, 512),
        dtype="float16",
        variant="fp16",
        memory_gb=2.6,
        activation_gb=1.5,
        cost=0.1,
        licence="Stability AI Non-Commercial Research Community License",
        description="SD 2.1 distilled to 1 step (ADD): fastest draft.",
    ),
    ExpertSpec(
        name="sdxl-turbo",
        model="stabilityai/sdxl-turbo",
        family="text2image",
        pipeline="AutoPipelineForText2Image",
        steps=1,
        guidance=0.0,
        resolution=(512, 512),
        dtype="float16",
        variant="fp16",
        memory_gb=7.0,
        activation_gb=2.0,
        cost=0.2,
        licence="Stability AI Non-Commercial Research Community License",
        description="SDXL distilled to 1-4 steps: fast, better detail than SD-Turbo.",
    ),
    ExpertSpec(
        name="flux-schnell",
        model="black-forest-labs/FLUX.1-schnell",
        family="text2image",
        pipeline="AutoPipelineForText2Image",
        steps=4,
        guidance=0.0,
        resolution=(1024, 1024),
        dtype="bfloat16",
        memory_gb=33.5,
        activation_gb=6.0,
        offload_gb=23.8,
        gated=True,
        needs=("sentencepiece", "google.protobuf"),
        cost=1.5,
        licence="Apache-2.0",
        description="12B rectified-flow transformer, 4 steps: strong prompt following and text.",
        call_kwargs={"max_sequence_length": 256},
    ),
    ExpertSpec(
        name="sd3.5-medium",
        model="stabilityai/stable-diffusion-3.5-medium",
        family="text2image",
        pipeline="AutoPipelineForText2Image",
        steps=40,  # the model card's recommendation
        guidance=4.5,
        resolution=(1024, 1024),
        dtype="bfloat16",
        memory_gb=16.0,
        activation_gb=5.0,
        offload_gb=9.5,
        gated=True,
        needs=("sentencepiece", "google.protobuf"),
        cost=5.7,
        licence="Stability AI Community License",
        description="2.5B MMDiT with T5-XXL: composition, counting and spatial layout.",
        negative_prompt=_NEG,
    ),
    ExpertSpec(
        name="pixart-sigma",
        model="PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
        family="text2image",
        pipeline="AutoPipelineForText2Image",
        steps=20,
        guidance=4.5,
        resolution=(1024, 1024),
        dtype="float16",
        memory_gb=11.0,
        activation_gb=5.0,
        offload_gb=9.5,
        needs=("sentencepiece", "google.protobuf"),
        cost=3.0,
        licence="CreativeML Open RAIL++-M",
        description="0.6B DiT with T5-XXL (300 tokens): long, dense prompts.",
        negative_prompt=_NEG,
    ),
    # --- image to image ------------------------------------------------------------------
    ExpertSpec(
        name="sd-turbo-img2img",
        model="stabilityai/sd-turbo",
        family="image2image",
        pipeline="AutoPipelineForImage2Image",
        steps=2,
        guidance=0.0,
        strength=0.5,
        resolution=(512, 512),
        dtype="float16",
        variant="fp16",
        memory_gb=2.6,
        activation_gb=1.5,
        cost=0.1,
        licence="Stability AI Non-Commercial Research Community License",
        description="SDEdit with SD-Turbo, shares weights with sd-turbo: cheap restyle.",
    ),
    ExpertSpec(
        name="sdxl-turbo-img2img",
        model="stabilityai/sdxl-turbo",
        family="image2image",
        pipeline="AutoPipelineForImage2Image",
        steps=2,
        guidance=0.0,
        strength=0.5,
        resolution=(512, 512),
        dtype="float16",
        variant="fp16",
        memory_gb=7.0,
        activation_gb=2.0,
        cost=0.2,
        licence="Stability AI Non-Commercial Research Community License",
        description="SDEdit with SDXL-Turbo, shares weights with sdxl-turbo: restyle, refine.",
    ),
    ExpertSpec(
        name="sd3.5-medium-img2img",
        model="stabilityai/stable-diffusion-3.5-medium",
        family="image2image",
        pipeline="AutoPipelineForImage2Image",
        steps=40,  # the model card's recommendation
        guidance=4.5,
        strength=0.6,
        resolution=(1024, 1024),
        dtype="bfloat16",
        memory_gb=16.0,
        activation_gb=5.0,
        offload_gb=9.5,
        gated=True,
        needs=("sentencepiece", "google.protobuf"),
        cost=3.6,
        licence="Stability AI Community License",
        description="SDEdit with SD3.5-Medium, shares weights: restyle while keeping layout.",
        negative_prompt=_NEG,
    ),
    ExpertSpec(
        name="instruct-pix2pix",
        model="timbrooks/instruct-pix2pix",
        family="instruct_pix2pix",
        pipeline="StableDiffusionInstructPix2PixPipeline",
        steps=20,
        guidance=7.5,
        image_guidance=1.5,
        resolution=(512, 512),
        dtype="float16",
        memory_gb=2.6,
        activation_gb=2.0,
        cost=1.0,
        licence="MIT",
        description="Instruction editing ('make the car red'): recolour, add, restyle.",
    ),
    ExpertSpec(
        name="magicbrush",
        model="vinesmsuic/magicbrush-jul7",
        family="instruct_pix2pix",
        pipeline="StableDiffusionInstructPix2PixPipeline",
        steps=20,
        guidance=7.5,
        image_guidance=1.5,
        resolution=(512, 512),
        dtype="float16",
        memory_gb=2.6,
        activation_gb=2.0,
        cost=1.0,
        licence="CC-BY-4.0 (MagicBrush release; check the model card)",
        description="InstructPix2Pix fine-tuned on MagicBrush: local, faithful edits.",
    ),
    ExpertSpec(
        name="flux-kontext",
        model="black-forest-labs/FLUX.1-Kontext-dev",
        family="instruction_edit",
        pipeline="FluxKontextPipeline",
        steps=28,
        guidance=2.5,
        resolution=(1024, 1024),
        dtype="bfloat16",
        memory_gb=33.5,
        activation_gb=8.0,
        offload_gb=23.8,
        gated=True,
        needs=("sentencepiece", "google.protobuf"),
        cost=8.0,
        licence="FLUX.1 [dev] Non-Commercial License (gated)",
        description="12B in-context editor: add/remove/move objects, keeps identity.",
    ),
    ExpertSpec(
        name="sdxl-refiner",
        model="stabilityai/stable-diffusion-xl-refiner-1.0",
        family="image2image",
        pipeline="StableDiffusionXLImg2ImgPipeline",
        steps=25,
        guidance=5.0,
        strength=0.3,
        resolution=(1024, 1024),
        dtype="float16",
        variant="fp16",
        memory_gb=6.1,
        activation_gb=5.0,
        offload_gb=4.6,
        cost=1.5,
        licence="CreativeML Open RAIL++-M",
        description="SDXL refiner: sharpens detail and fixes artefacts, low strength.",
    ),
)


def default_pool() -> tuple[ExpertSpec, ...]:
    """Deprecated: :data:`DEFAULT_CATALOG`, the 12 default expert specs."""
    return DEFAULT_CATALOG


def catalog_table(specs: tuple[ExpertSpec, ...] = DEFAULT_CATALOG) -> str:
    """The specs as a Markdown table (used to write ``docs/real_pool.md``)."""
    rows = [
        "| name | kind | model | pipeline | steps | guidance | strength | resolution | dtype "
        "| weights (GB, est.) | activations (GB, est.) | gated | licence |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in specs:
        strength = "" if s.strength is None else f"{s.strength:g}"
        rows.append(
            f"| {s.name} | {s.kind} | `{s.model}` | {s.pipeline} | {s.steps} | {s.guidance:g} | {strength} | "
            f"{s.resolution[0]}x{s.resolution[1]} | {s.dtype} | {s.memory_gb:g} | {s.activation_gb:g} | "
            f"{'yes' if s.gated else ''} | {s.licence} |"
        )
    return "\n".join(rows)


# Deprecated names (in image-poser a *pool* is where components run: poser_env.pools).
DEFAULT_POOL, pool_table = DEFAULT_CATALOG, catalog_table
