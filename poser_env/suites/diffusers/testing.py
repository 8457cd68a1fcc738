"""Tiny random models for tests, benchmarks and dry runs (no download, no GPU).

Each builder makes a randomly initialised model from a config, with an offline tokenizer,
and writes it with ``save_pretrained`` to a folder. The suite then loads that folder through
exactly the code that loads real checkpoints (``from_pretrained``), so the tests exercise
the real loading, calling and scoring paths; only the weights are fake. The images and
texts these models produce are noise: use them to test plumbing, never quality.

Modelled on the tiny components in diffusers' and transformers' own test suites.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from poser_env.suites.diffusers.models import ExpertSpec

#: Side of the tiny diffusion models' images (pixels).
TINY_RESOLUTION = 32

_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    # The GPT-2 / CLIP byte-to-printable-character table.
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def write_clip_tokenizer(folder: str | os.PathLike) -> Any:
    """A character-level CLIP tokenizer (vocab.json + merges.txt, no merges) saved to ``folder``."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(c, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return tok


def make_chat_tokenizer() -> Any:
    """A byte-level BPE tokenizer with a chat template, "Yes"/"No" as single tokens and an ``<image>`` token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    specials = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
    for t in specials:
        vocab[t] = len(vocab)
    for c in _bytes_to_unicode().values():
        vocab.setdefault(c, len(vocab))
    merges = [
        ("Y", "e"),
        ("Ye", "s"),
        ("N", "o"),
        ("Ġ", "Yes"),
        ("Ġ", "No"),
        ("y", "e"),
        ("ye", "s"),
        ("n", "o"),
    ]
    for a, b in [("Y", "e"), ("Ye", "s"), ("N", "o"), ("y", "e"), ("ye", "s"), ("n", "o")]:
        vocab.setdefault(a + b, len(vocab))
    for w in ("ĠYes", "ĠNo"):
        vocab.setdefault(w, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<image>"],
    )
    tok.chat_template = _CHAT_TEMPLATE
    return tok


def save_tiny_sd(
    folder: str | os.PathLike, *, instruct_pix2pix: bool = False, seed: int = 0
) -> Path:
    """A tiny Stable Diffusion (or InstructPix2Pix: 8 UNet input channels) pipeline in ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    tok = write_clip_tokenizer(folder / "_tokenizer_src")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=TINY_RESOLUTION // 2,
        in_channels=8 if instruct_pix2pix else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=TINY_RESOLUTION,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.eos_token_id,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(tok),
            projection_dim=16,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    cls = StableDiffusionInstructPix2PixPipeline if instruct_pix2pix else StableDiffusionPipeline
    pipe = cls(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def save_tiny_vlm(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny LLaVA (CLIP vision tower + Llama) loadable with ``AutoModelForImageTextToText``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = Path(folder)
    tok = make_chat_tokenizer()
    torch.manual_seed(seed)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=_tiny_llama_config(tok, max_position_embeddings=2048),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(folder)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tok,
        patch_size=8,
        num_additional_image_tokens=1,  # the CLIP class token, dropped by the "default" strategy
        vision_feature_select_strategy="default",
        chat_template=_CHAT_TEMPLATE,
        image_token="<image>",
    )
    processor.save_pretrained(folder)
    return folder


def _tiny_llama_config(tok, max_position_embeddings: int):
    """The tiny Llama text model shared by the tiny VLM and the tiny LLM."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )


def save_tiny_llm(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny Llama causal LM with a chat template, loadable with ``AutoModelForCausalLM``."""
    import torch
    from transformers import LlamaForCausalLM

    folder = Path(folder)
    tok = make_chat_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_tiny_llama_config(tok, max_position_embeddings=4096))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_pool(root: str | os.PathLike, steps: int = 2) -> tuple[ExpertSpec, ...]:
    """Build tiny checkpoints under ``root`` and return specs for them.

    Four experts over two checkpoints: ``tiny-t2i`` and ``tiny-img2img`` share the tiny SD
    weights (``from_pipe``), ``tiny-ip2p`` has its own InstructPix2Pix weights, and
    ``tiny-t2i-b`` is a second text-to-image action on the shared weights with other
    settings.
    """
    root = Path(root)
    sd = root / "tiny-sd"
    ip2p = root / "tiny-ip2p"
    if not (sd / "model_index.json").exists():
        save_tiny_sd(sd)
    if not (ip2p / "model_index.json").exists():
        save_tiny_sd(ip2p, instruct_pix2pix=True, seed=1)
    res = (TINY_RESOLUTION, TINY_RESOLUTION)
    common = {
        "resolution": res,
        "dtype": "float32",
        "memory_gb": 0.001,
        "licence": "random weights",
    }
    return (
        ExpertSpec(
            name="tiny-t2i",
            model=str(sd),
            family="text2image",
            pipeline="AutoPipelineForText2Image",
            steps=steps,
            guidance=0.0,
            cost=0.1,
            **common,
        ),
        ExpertSpec(
            name="tiny-t2i-b",
            model=str(sd),
            family="text2image",
            pipeline="StableDiffusionPipeline",
            steps=steps,
            guidance=2.0,
            cost=0.2,
            negative_prompt="blurry",
            **common,
        ),
        ExpertSpec(
            name="tiny-img2img",
            model=str(sd),
            family="image2image",
            pipeline="AutoPipelineForImage2Image",
            steps=steps,
            guidance=0.0,
            strength=0.5,
            cost=0.1,
            **common,
        ),
        ExpertSpec(
            name="tiny-ip2p",
            model=str(ip2p),
            family="instruct_pix2pix",
            pipeline="StableDiffusionInstructPix2PixPipeline",
            steps=steps,
            guidance=2.0,
            image_guidance=1.5,
            cost=0.3,
            **common,
        ),
    )
