"""scripts/gpu_smoke.py: its checks judge images correctly, and the whole script runs on CPU
with tiny models (--dry-run), writing the JSON and the Markdown table with every named check."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "gpu_smoke.py"


@pytest.fixture(scope="module")
def smoke():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_smoke"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_image_checks_catch_black_flat_nan_and_wrong_size(smoke):
    rng = np.random.default_rng(0)
    good = rng.random((64, 64, 3), dtype=np.float32)
    assert smoke.image_problems(good, (64, 64)) == []
    assert smoke.image_problems(np.zeros((64, 64, 3), np.float32), (64, 64))[0].startswith(
        "uniform image"
    )
    assert smoke.image_problems(np.full((64, 64, 3), 0.5, np.float32), None)[0].startswith(
        "uniform image"
    )
    nan = good.copy()
    nan[3, 3, 0] = np.nan
    assert smoke.image_problems(nan, (64, 64)) == ["non-finite pixels (NaN/inf: fp16 overflow?)"]
    assert smoke.image_problems(good, (128, 128)) == ["size 64x64, native is 128x128"]
    picture = smoke.synthetic_image((48, 64))
    assert (
        picture.shape == (48, 64, 3)
        and picture.dtype == np.uint8
        and smoke.image_problems(picture, (48, 64)) == []
    )


def test_print_downloads_marks_the_gated_models(smoke, capsys):
    assert smoke.main(["--print-downloads"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        "hf download black-forest-labs/FLUX.1-schnell   # gated: accept the licence on huggingface.co first"
        in out
    )
    assert (
        "hf download stabilityai/sd-turbo" in out
        and "hf download llava-hf/llava-v1.6-mistral-7b-hf" in out
    )


def test_dry_run_runs_every_named_check(smoke, tmp_path, capsys):
    pytest.importorskip("diffusers")
    out = tmp_path / "smoke"
    rc = smoke.main(["--dry-run", "--experts", "tiny-t2i,tiny-ip2p,tiny-gated", "--out", str(out)])
    report = json.loads(out.with_suffix(".json").read_text())
    status = {
        c["name"].split(":")[0] + ":" + Path(c["name"].split(":", 1)[1]).name: c["status"]
        for c in report["checks"]
    }
    assert status["output:tiny-t2i"] == status["output:tiny-ip2p"] == "pass"
    assert status["load:gated-model"] == status["output:tiny-gated"] == "gated"
    gated = next(c for c in report["checks"] if c["name"] == "load:no-org/gated-model")
    assert "accept its licence" in gated["detail"] and "hf auth login" in gated["detail"]
    assert status["memory:tiny-sd"] == "info"  # no CUDA: nothing measured, and it says so
    assert status["critic:prefers-match"] == status["scorer:prefers-match"] == "info"
    eviction = next(c for c in report["checks"] if c["name"] == "eviction:80gb")
    assert eviction["status"] == "pass" and eviction["measured"]["evictions"] > 0
    assert report["summary"]["fail"] == 0 and rc == 0
    assert "nothing here is a GPU measurement" in report["device"]
    table = out.with_suffix(".md").read_text()
    assert "| output:tiny-t2i | pass |" in table and "| eviction:80gb | pass |" in table
