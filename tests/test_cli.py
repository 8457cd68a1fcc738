"""python -m poser_env (subprocess smoke tests that check what was written)."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "poser_env", *args], capture_output=True, text=True, check=True
    )


def test_demo_writes_trajectory_picture(tmp_path):
    out = tmp_path / "demo.png"
    res = run("demo", "--seed", "0", "--out", str(out))
    assert "Prompt:" in res.stdout and "final:" in res.stdout
    img = Image.open(out)
    assert img.width >= 400 and img.height > 150


def test_demo_with_own_prompt_and_oracle(tmp_path):
    out = tmp_path / "d.png"
    res = run(
        "demo",
        "--policy",
        "oracle",
        "--prompt",
        "Draw two blue stars at the top.",
        "--out",
        str(out),
    )
    assert "command 1: draw two blue stars at the top" in res.stdout
    assert out.exists()


def test_experts_table_and_suites():
    res = run("experts")
    assert "count-master" in res.stdout and "i2i" in res.stdout
    assert len([line for line in res.stdout.splitlines() if line.strip()]) == 13
    assert "shapes" in run("suites").stdout


def test_bad_prompt_exits_with_message(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "poser_env",
            "demo",
            "--prompt",
            "Draw a purple elephant",
            "--out",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0
    assert "Could not parse 'draw a purple elephant'" in res.stderr
