"""Image-text scoring models, and evaluation scorers kept separate from the reward critic.

Two model wrappers do the scoring for both critics and scorers:

* :class:`VQAScoreModel` - any ``AutoModelForImageTextToText`` VLM; the probability that the
  answer to a yes/no question is "Yes", read from the logits of the first answer token
  (the VQAScore method, Lin et al. 2024, as implemented in ``linzhiqiu/t2v_metrics``: the
  question ``Does this figure show "{text}"? Please answer Yes or No.``, and the
  unnormalised softmax probability of the single token "Yes"). Nothing depends on parsing
  generated text.
* :class:`CLIPScoreModel` - an open_clip model; cosine similarity of image and text.

The evaluation scorers (:class:`CLIPScorer`, :class:`VQAScorer`, :class:`GenEvalScorer`)
answer "how good is the final image for this prompt" for benchmarks. The paper used one
model as both reward critic and judge, so a policy that exploits the critic looks good in
evaluation too; here :func:`default_scorer` picks a VLM of another family than the critic
and :func:`check_independent` refuses a scorer of the critic's family unless asked.
"""

from __future__ import annotations

import colorsys
import hashlib
import inspect
import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from poser_env._imports import require
from poser_env.constraints import Constraint, ObjectRef, constraint_text, known_counts
from poser_env.error import ConfigError, ModelLoadError


def _model_dtype(torch: Any, name: str | None, device: str) -> Any:
    """The torch dtype named ``name``, or bfloat16 on CUDA and float32 elsewhere."""
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(
        name
    )
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return dtype


def _local_only(local_files_only: bool | None) -> bool:
    if local_files_only is None:
        return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    return local_files_only


def _pil(image: np.ndarray) -> Any:
    from PIL import Image

    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        got = f"shape {getattr(image, 'shape', None)} dtype {getattr(image, 'dtype', type(image).__name__)}"
        raise ValueError(f"Expected an (H, W, 3) uint8 image, got {got}.")
    return Image.fromarray(image)


#: Appended to every yes/no question (the ending of t2v_metrics' VQAScore question template).
ANSWER_SUFFIX = " Please answer Yes or No."
#: The published VQAScore question for a whole prompt (t2v_metrics' default ``question_template``).
VQASCORE_QUESTION = 'Does this figure show "{}"?' + ANSWER_SUFFIX
#: How a yes/no probability is computed (see :class:`VQAScoreModel`).
FORMULAS = ("vqascore", "yes_no")
#: The evaluation VLM used when the critic is of the Qwen family (the default critic's):
#: LLaVA-NeXT on Mistral-7B, Apache-2.0, about 15 GB in bf16.
DEFAULT_SCORER_MODEL = "llava-hf/llava-v1.6-mistral-7b-hf"
#: The evaluation VLM used when the critic is itself a LLaVA.
ALTERNATE_SCORER_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


class VQAScoreModel:
    """Yes/no probabilities from a vision-language model (VQAScore).

    The model and processor load lazily, on the first question, through
    ``AutoProcessor.from_pretrained`` and ``AutoModelForImageTextToText.from_pretrained``.

    Every question gets :data:`ANSWER_SUFFIX` (``" Please answer Yes or No."``, the
    t2v_metrics template's ending) and the model's chat template. Two formulas:

    * ``"vqascore"`` (default, as published): the softmax probability, over the whole
      vocabulary, of the one token that ``"Yes"`` encodes to, at the first answer
      position. Comparable with published VQAScore numbers only with the same model.
    * ``"yes_no"``: ``P("Yes") / (P("Yes") + P("No"))`` of those two single tokens, a
      two-way choice that ignores the mass on other tokens (this project's earlier
      default, kept for critics that want a score centred on 0.5).

    Only the exact tokens of ``"Yes"`` and ``"No"`` count (not " yes" or "YES", whose first
    sub-token would be a different word); a tokenizer that splits ``"Yes"`` into several
    tokens is refused.

    Args:
        model: Hub id (e.g. ``"Qwen/Qwen2.5-VL-7B-Instruct"``) or a local folder.
        device: ``"auto"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"cpu"``.
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU), ``"bfloat16"``, ``"float16"`` or ``"float32"``.
        formula: ``"vqascore"`` or ``"yes_no"`` (see above).
        batch_size: Questions per forward pass.
        local_files_only: Never contact the hub; ``None`` follows ``HF_HUB_OFFLINE``.
        cache_size: Most ``(image, question)`` scores remembered (0 disables the cache).
            An env step asks several questions twice about one image (a command's
            constraints are also the prompt's; fidelity and aesthetics are asked again at
            the end of the episode): the cache answers repeats without running the model.
            Keys hash the image's pixels, so a changed image is never served a stale score.
    """

    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str = "auto",
        formula: Literal["vqascore", "yes_no"] = "vqascore",
        batch_size: int = 8,
        local_files_only: bool | None = None,
        cache_size: int = 1024,
    ):
        from poser_env.suites.diffusers.loader import check_device

        if cache_size < 0:
            raise ConfigError(f"cache_size must be >= 0, got {cache_size}.")
        if formula not in FORMULAS:
            raise ConfigError(f"formula must be one of {FORMULAS}, got {formula!r}.")
        self.model_name = model
        self.device = check_device(device)
        self.dtype = dtype
        self.formula = formula
        self.batch_size = int(batch_size)
        self.local_files_only = local_files_only
        self._model: Any = None
        self._processor: Any = None
        self._yes: int | None = None
        self._no: int | None = None
        self.cache_size = int(cache_size)
        self._scores: OrderedDict[tuple[bytes, str], float] = OrderedDict()
        self._prompts: OrderedDict[str, str] = OrderedDict()  # question -> chat-formatted text

    def load(self) -> None:
        """Load the processor and model now (otherwise done on first use)."""
        if self._model is not None:
            return
        torch = require("torch", "models", "The VLM critic")
        transformers = require("transformers", "models", "The VLM critic")
        from poser_env.suites.diffusers.loader import resolve_device

        self.device = resolve_device(self.device)
        dtype = _model_dtype(torch, self.dtype, self.device)
        local = _local_only(self.local_files_only)
        try:
            processor = transformers.AutoProcessor.from_pretrained(
                self.model_name, local_files_only=local
            )
            model = transformers.AutoModelForImageTextToText.from_pretrained(
                self.model_name, dtype=dtype, local_files_only=local
            )
        except Exception as e:  # noqa: BLE001 - one clear error for every loading failure
            raise _load_error(self.model_name, "VLM", e, local) from e
        model.to(self.device).eval()
        tok = processor.tokenizer
        tok.padding_side = "left"  # the answer position is then the last one in every row
        self._yes = _single_token(tok, "Yes", self.model_name)
        self._no = _single_token(tok, "No", self.model_name)
        if self._yes == self._no:
            raise ConfigError(
                f"VLM {self.model_name!r}: its tokenizer maps 'Yes' and 'No' to the same token."
            )
        self._processor, self._model = processor, model
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    def place(self, device: str) -> None:
        """Pin the model to ``device`` (a Ray replica's), before it loads."""
        from poser_env.suites.diffusers.loader import placed_device

        if self._model is not None:
            raise ConfigError(
                f"VQAScoreModel.place({device!r}) after {self.model_name!r} was loaded."
            )
        self.device = placed_device(self.device, device, f"The VLM {self.model_name!r}")

    def _prompt(self, text: str) -> str:
        # The same few questions come back every step: render each chat template once.
        prompt = self._prompts.get(text)
        if prompt is None:
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
            ]
            prompt = self._processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            self._prompts[text] = prompt
            if len(self._prompts) > max(self.cache_size, 256):
                self._prompts.popitem(last=False)
        return prompt

    def p_yes(self, image: np.ndarray, questions: Sequence[str]) -> list[float]:
        """``P(yes)`` for each question about ``image``, in order.

        Repeated questions, within one call or (with the cache) across calls about the same
        pixels, are answered once.
        """
        import torch

        pil = _pil(image)  # validates the image
        questions = list(questions)
        image_key = _image_key(image) if self.cache_size else b""
        found: dict[str, float] = {}
        for q in questions:
            if q not in found and (image_key, q) in self._scores:
                found[q] = self._scores[(image_key, q)]
                self._scores.move_to_end((image_key, q))
        todo = list(dict.fromkeys(q for q in questions if q not in found))
        if todo:
            self.load()
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            texts = [self._prompt(f"{q}{ANSWER_SUFFIX}") for q in chunk]
            inputs = self._processor(
                text=texts, images=[pil] * len(chunk), padding=True, return_tensors="pt"
            )
            inputs = inputs.to(self.device)
            with torch.inference_mode():
                # Only the answer position's logits: the full (rows x tokens x vocabulary)
                # tensor is GBs for a 1024 px image's ~1300 visual tokens.
                extra = {"logits_to_keep": 1} if self._keeps_logits else {}
                logits = self._model(**inputs, **extra).logits[:, -1, :].float()
            probs = torch.softmax(logits, dim=-1)
            yes = probs[:, self._yes]
            p = (
                yes
                if self.formula == "vqascore"
                else yes / (yes + probs[:, self._no]).clamp_min(1e-12)
            )
            for q, v in zip(chunk, p.tolist(), strict=True):
                found[q] = v
                if self.cache_size:
                    self._scores[(image_key, q)] = v
        while len(self._scores) > self.cache_size:
            self._scores.popitem(last=False)
        return [found[q] for q in questions]

    def generate(self, image: np.ndarray, text: str, max_new_tokens: int = 48) -> str:
        """Greedy free-text answer (used for reflections only, never for scores)."""
        import torch

        self.load()
        inputs = self._processor(
            text=[self._prompt(text)], images=[_pil(image)], return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self._processor.batch_decode(
            out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )[0].strip()

    def close(self) -> None:
        self._model = self._processor = None
        self._scores.clear()
        self._prompts.clear()


def _image_key(image: np.ndarray) -> bytes:
    """A digest of the pixels (and shape), for the score cache."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
    digest.update(str(image.shape).encode())
    return digest.digest()


def _single_token(tok: Any, word: str, model: str) -> int:
    """The id of the one token ``word`` encodes to (as t2v_metrics encodes its answer template)."""
    ids = tok.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ConfigError(
            f"VLM {model!r}: its tokenizer encodes {word!r} as {len(ids)} tokens {ids}; VQAScore needs it to be one "
            "token. Use another VLM (Qwen2-VL, LLaVA and most chat VLMs qualify)."
        )
    return int(ids[0])


def _load_error(model: str, what: str, cause: BaseException, local: bool) -> Exception:
    hint = (
        f"The hub is off (HF_HUB_OFFLINE=1): download the {what} first (`hf download {model}`) or pass a local folder."
        if local
        else f"Check the {what} id, your network, and that it is an AutoModelForImageTextToText/CausalLM checkpoint."
    )
    return ModelLoadError(model, what, cause, hint, role=f"the {what}")


class CLIPScoreModel:
    """Image-text cosine similarity from an open_clip model.

    Args:
        model_name: open_clip architecture ("ViT-B-32", "ViT-H-14"...).
        pretrained: open_clip pretrained tag or a checkpoint path; ``None`` gives random
            weights (tests only: the scores are then meaningless).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        device: str = "auto",
    ):
        from poser_env.suites.diffusers.loader import check_device

        self.model_name = model_name
        self.pretrained = pretrained
        self.device = check_device(device)
        self._model: Any = None

    def load(self) -> None:
        if self._model is not None:
            return
        open_clip = require(
            "open_clip", "models", "The CLIP critic and scorer", package="open_clip_torch"
        )
        from poser_env.suites.diffusers.loader import resolve_device

        self.device = resolve_device(self.device)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.pretrained, device=self.device
            )
        except Exception as e:  # noqa: BLE001
            raise _load_error(f"{self.model_name}/{self.pretrained}", "CLIP model", e, True) from e
        self._model, self._preprocess = model.eval(), preprocess
        self._tokenizer = open_clip.get_tokenizer(self.model_name)

    def place(self, device: str) -> None:
        """Pin the model to ``device`` (a Ray replica's), before it loads."""
        from poser_env.suites.diffusers.loader import placed_device

        if self._model is not None:
            raise ConfigError(f"CLIPScoreModel.place({device!r}) after the model was loaded.")
        self.device = placed_device(self.device, device, f"The CLIP model {self.model_name!r}")

    def cosine(self, image: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of ``image`` with each text, shape ``(len(texts),)``."""
        import torch

        self.load()
        pixels = self._preprocess(_pil(image)).unsqueeze(0).to(self.device)
        tokens = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            img = self._model.encode_image(pixels).float()
            txt = self._model.encode_text(tokens).float()
        img = img / img.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        txt = txt / txt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return (txt @ img.T).squeeze(-1).cpu().numpy().astype(np.float64)

    def close(self) -> None:
        self._model = None


# ----------------------------------------------------------------------------------------
# Evaluation scorers
# ----------------------------------------------------------------------------------------


class Scorer(ABC):
    """Scores a final image against its prompt for evaluation (not for reward)."""

    name: str = "scorer"

    @abstractmethod
    def score(
        self, image: np.ndarray, prompt: str, constraints: Sequence[Constraint] = ()
    ) -> dict[str, float]:
        """Named scores for ``image`` (higher is better)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Optional."""


class CLIPScorer(Scorer):
    """CLIPScore (Hessel et al. 2021): ``2.5 * max(cos(image, prompt), 0)``, in [0, 2.5].

    Args:
        clip: A :class:`CLIPScoreModel` (default: ViT-B-32, LAION-2B weights).
    """

    name = "clipscore"

    def __init__(self, clip: CLIPScoreModel | None = None):
        self.clip = clip or CLIPScoreModel()

    def score(
        self, image: np.ndarray, prompt: str, constraints: Sequence[Constraint] = ()
    ) -> dict[str, float]:
        cos = float(self.clip.cosine(image, [prompt])[0])
        return {"clipscore": 2.5 * max(cos, 0.0)}

    def close(self) -> None:
        self.clip.close()


class VQAScorer(Scorer):
    """VQAScore (Lin et al. 2024) for the whole prompt, plus the same score per constraint.

    Returns ``vqascore`` (``P("Yes")`` for :data:`VQASCORE_QUESTION` of the prompt, the
    published formula), ``constraint_vqascore`` (mean over constraints; equals
    ``vqascore`` when there are none) and ``constraint_accuracy`` (fraction of
    constraints with ``P("Yes") >= threshold``).

    Args:
        vqa: A :class:`VQAScoreModel` or a model id (default :data:`DEFAULT_SCORER_MODEL`,
            a LLaVA: another family than the default Qwen critic).
        threshold: Score at which a constraint counts as met.
        device: For a model id: where it runs.
    """

    name = "vqascore"

    def __init__(
        self,
        vqa: VQAScoreModel | str = DEFAULT_SCORER_MODEL,
        threshold: float = 0.5,
        device: str = "auto",
    ):
        self.vqa = VQAScoreModel(vqa, device=device) if isinstance(vqa, str) else vqa
        self.threshold = threshold

    @property
    def family(self) -> str:
        """Model family of the scoring VLM (see :func:`model_family`)."""
        return model_family(self.vqa.model_name)

    def score(
        self, image: np.ndarray, prompt: str, constraints: Sequence[Constraint] = ()
    ) -> dict[str, float]:
        # p_yes appends ANSWER_SUFFIX, giving exactly VQASCORE_QUESTION.format(prompt).
        counts = known_counts(constraints)
        questions = [
            VQASCORE_QUESTION.format(prompt).removesuffix(ANSWER_SUFFIX),
            *(constraint_text(c, counts, question=True) for c in constraints),
        ]
        p = self.vqa.p_yes(image, questions)
        per = p[1:] or p[:1]
        return {
            "vqascore": p[0],
            "constraint_vqascore": float(np.mean(per)),
            "constraint_accuracy": float(np.mean([v >= self.threshold for v in per])),
        }

    def close(self) -> None:
        self.vqa.close()


@dataclass(frozen=True)
class Detection:
    """One detected object: label (a noun asked for), confidence, and box ``(x0, y0, x1, y1)`` in pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]


#: ``detector(image, nouns) -> detections``; see :func:`owl_detector` for a real one.
Detector = Callable[[np.ndarray, Sequence[str]], Sequence[Detection]]

#: Reference hues (degrees) for colour words; greys handled by saturation/value.
_HUES = {
    "red": 0,
    "orange": 30,
    "yellow": 60,
    "green": 120,
    "cyan": 180,
    "blue": 230,
    "purple": 280,
    "pink": 330,
}


def dominant_color(image: np.ndarray, box: tuple[float, float, float, float]) -> str:
    """Colour word of the central half of ``box``: a hue name, or black/white/gray."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    cx0, cx1 = int(x0 + (x1 - x0) / 4), int(x1 - (x1 - x0) / 4)
    cy0, cy1 = int(y0 + (y1 - y0) / 4), int(y1 - (y1 - y0) / 4)
    crop = image[max(cy0, 0) : max(min(cy1, h), cy0 + 1), max(cx0, 0) : max(min(cx1, w), cx0 + 1)]
    r, g, b = (
        (crop.reshape(-1, 3).astype(np.float64).mean(0) / 255.0) if crop.size else (0.0, 0.0, 0.0)
    )
    hue, sat, val = colorsys.rgb_to_hsv(r, g, b)
    if val < 0.2:
        return "black"
    if sat < 0.2:
        return "white" if val > 0.8 else "gray"
    deg = hue * 360.0
    return min(_HUES, key=lambda k: min(abs(deg - _HUES[k]), 360 - abs(deg - _HUES[k])))


class GenEvalScorer(Scorer):
    """GenEval-style checks (Ghosh et al. 2023): objects, counts, colours and positions from a detector.

    Each count/region/relation constraint is checked from detections: counts by the number
    of confident boxes of the noun (of the asked colour, judged by :func:`dominant_color`),
    regions by box centres (image thirds), relations by comparing centres. Background and
    text constraints are not checkable by a detector and are skipped (counted in
    ``geneval_skipped``).

    Args:
        detector: Callable returning detections for the nouns asked; :func:`owl_detector`
            wraps a transformers zero-shot detector (OWLv2, Grounding DINO).
        threshold: Minimum detection score.
    """

    name = "geneval"

    def __init__(self, detector: Detector, threshold: float = 0.3):
        self.detector = detector
        self.threshold = threshold

    def check(
        self, image: np.ndarray, constraint: Constraint, dets: Sequence[Detection]
    ) -> bool | None:
        """Whether ``constraint`` holds given ``dets``; ``None`` when a detector cannot tell."""
        h, w = image.shape[:2]

        def of(ref: ObjectRef) -> list[Detection]:
            found = [d for d in dets if d.label == ref.noun and d.score >= self.threshold]
            if ref.color is not None:
                found = [d for d in found if dominant_color(image, d.box) == ref.color]
            return found

        def centre(d: Detection) -> tuple[float, float]:
            return ((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2)

        if constraint.kind == "count":
            return len(of(constraint.subject)) == constraint.count
        if constraint.kind == "region":
            subj = of(constraint.subject)
            if not subj:
                return False
            tests = {
                "left": lambda x, y: x < w / 3,
                "right": lambda x, y: x > 2 * w / 3,
                "top": lambda x, y: y < h / 3,
                "bottom": lambda x, y: y > 2 * h / 3,
                "center": lambda x, y: w / 3 <= x <= 2 * w / 3 and h / 3 <= y <= 2 * h / 3,
            }
            test = tests.get(constraint.region)
            return None if test is None else all(test(*centre(d)) for d in subj)
        if constraint.kind == "relation":
            subj, other = of(constraint.subject), of(constraint.other)
            if not subj or not other:
                return False
            cmp = {
                "left of": lambda a, b: a[0] < b[0],
                "right of": lambda a, b: a[0] > b[0],
                "above": lambda a, b: a[1] < b[1],
                "below": lambda a, b: a[1] > b[1],
            }.get(constraint.relation)
            return (
                None if cmp is None else all(cmp(centre(s), centre(o)) for s in subj for o in other)
            )
        return None

    def score(
        self, image: np.ndarray, prompt: str, constraints: Sequence[Constraint] = ()
    ) -> dict[str, float]:
        nouns = sorted({r.noun for c in constraints for r in (c.subject, c.other) if r is not None})
        dets = list(self.detector(image, nouns)) if nouns else []
        results = [self.check(image, c, dets) for c in constraints]
        checked = [r for r in results if r is not None]
        return {
            "geneval_accuracy": float(np.mean(checked)) if checked else float("nan"),
            "geneval_all": float(all(checked)) if checked else float("nan"),
            "geneval_skipped": float(len(results) - len(checked)),
        }


def owl_detector(
    model: str = "google/owlv2-base-patch16-ensemble", device: str = "auto"
) -> Detector:
    """A :data:`Detector` from a transformers zero-shot object detector (loaded on first call).

    Not exercised by the test suite (no tiny detector is built there); the GenEval logic is
    tested with a hand-made detector.
    """
    state: dict[str, Any] = {}

    def detect(image: np.ndarray, nouns: Sequence[str]) -> list[Detection]:
        if "pipe" not in state:
            transformers = require("transformers", "models", "The GenEval scorer")
            from poser_env.suites.diffusers.loader import resolve_device

            dev = resolve_device(device)
            state["pipe"] = transformers.pipeline(
                "zero-shot-object-detection", model=model, device=dev
            )
        out = state["pipe"](_pil(image), candidate_labels=[f"a photo of a {n}" for n in nouns])
        dets = []
        for d in out:
            noun = d["label"].removeprefix("a photo of a ")
            b = d["box"]
            dets.append(
                Detection(noun, float(d["score"]), (b["xmin"], b["ymin"], b["xmax"], b["ymax"]))
            )
        return dets

    return detect


# ----------------------------------------------------------------------------------------
# Keeping the judge apart from the reward critic
# ----------------------------------------------------------------------------------------

#: Words that name a model family, checked in this order: the language model decides
#: (``llava-onevision-qwen2`` is a Qwen, ``llava-v1.6-mistral`` a LLaVA).
_FAMILY_WORDS = ("qwen", "gemma", "internvl", "smolvlm", "idefics", "phi", "molmo", "pixtral", "llava",
                 "mistral", "llama", "blip", "flan", "clip", "siglip", "gpt", "claude", "gemini")  # fmt: skip


def model_family(model: str | None) -> str:
    """The family of a model id (``"Qwen/Qwen2.5-VL-7B-Instruct"`` -> ``"qwen"``); the name itself if unknown."""
    if model is None:
        return "none"
    from poser_env.suites.diffusers.memory import COMPONENTS

    if model in COMPONENTS:
        return COMPONENTS[model].family
    low = str(model).lower()
    for word in _FAMILY_WORDS:
        if word in low:
            return word
    if low.startswith(("o1", "o3", "o4")):
        return "gpt"  # OpenAI's reasoning models
    return low.rsplit("/", 1)[-1]


def critic_family(critic: Any) -> str:
    """The model family behind a critic (VLM, CLIP or HTTP; Ray stand-ins read through)."""
    vqa = getattr(critic, "vqa", None)
    if vqa is not None:
        return model_family(vqa.model_name)
    if getattr(critic, "clip", None) is not None:
        return "clip"
    client = getattr(critic, "client", None)
    if client is not None:
        return model_family(getattr(client, "model", None))
    return f"critic:{getattr(critic, 'name', type(critic).__name__)}"


def scorer_family(scorer: Scorer) -> str | None:
    """The model family behind a scorer (``None`` for a detector, which is no judge of the critic's kind)."""
    if isinstance(scorer, VQAScorer):
        return scorer.family
    if isinstance(scorer, CLIPScorer):
        return "clip"
    return None


def check_independent(
    critic: Any, scorers: Sequence[Scorer], allow_same_family: bool = False
) -> None:
    """Refuse an evaluation scorer of the reward critic's model family.

    The paper's reviewers objected that one model was both reward and judge: a policy that
    learns the critic's blind spots then scores well in evaluation too. Scores from another
    family expose it.

    Raises:
        ConfigError: a scorer shares the critic's family (or its very model object), unless
            ``allow_same_family``.
    """
    family = critic_family(critic)
    for scorer in scorers:
        same_object = getattr(scorer, "vqa", None) is not None and getattr(
            scorer, "vqa", None
        ) is getattr(critic, "vqa", None)
        if allow_same_family and not same_object:
            continue
        if same_object or scorer_family(scorer) == family:
            raise ConfigError(
                f"Evaluation scorer {scorer.name!r} uses a {scorer_family(scorer)!r}-family model, the same family as "
                f"the reward critic ({family!r}): a policy that exploits the critic would look good in evaluation too. "
                f"Use default_scorer(critic) (a {model_family(DEFAULT_SCORER_MODEL)!r} or "
                f"{model_family(ALTERNATE_SCORER_MODEL)!r} VLM) or another family"
                + (
                    "."
                    if same_object
                    else ", or pass allow_same_family=True to compare them knowingly."
                )
            )


def default_scorer(critic: Any = None, device: str = "auto") -> VQAScorer:
    """VQAScore with a VLM of another family than ``critic`` (LLaVA for a Qwen critic, else Qwen).

    Nothing loads until the first score.
    """
    family = critic_family(critic) if critic is not None else "qwen"
    model = (
        ALTERNATE_SCORER_MODEL
        if family == model_family(DEFAULT_SCORER_MODEL)
        else DEFAULT_SCORER_MODEL
    )
    scorer = VQAScorer(model, device=device)
    if critic is not None:
        check_independent(critic, [scorer])
    return scorer
