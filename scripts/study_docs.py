"""Copy the study reports' tables and plots into docs/study.md (no number typed by hand).

``docs/study.md`` holds, for each study, a block between ``<!-- study:NAME -->`` and
``<!-- /study:NAME -->``; this script replaces each block with the body of
``<results>/<NAME>[-quick]/report.md`` (its tables, compute and failed cells) and copies the
plots to ``docs/study/``. The reading around the blocks is written by people.

    python -m poser_agents.study run all --quick --out study
    python scripts/study_docs.py --results study --quick
    python scripts/study_docs.py --results study --tag study-full   # blocks of full runs
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def block_pattern(tag: str) -> re.Pattern:
    """``<!-- TAG:NAME -->`` ... ``<!-- /TAG:NAME -->``."""
    t = re.escape(tag)
    return re.compile(
        rf"(<!-- {t}:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /{t}:(?P=name) -->)", re.S
    )


def render_block(report: Path, images: Path, name: str) -> str:
    """The report's text below its title, with plot links pointing into ``images``."""
    text = report.read_text().split("\n", 1)[1].strip()
    for png in sorted(report.parent.glob("*.png")):
        target = images / f"{name}_{png.name}"
        shutil.copyfile(png, target)
        text = text.replace(f"]({png.name})", f"](study/{target.name})")
    return text.replace("\n## ", "\n#### ") + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="study", help="the --out folder of poser study")
    p.add_argument("--quick", action="store_true", help="read the -quick result folders")
    p.add_argument("--doc", default=str(ROOT / "docs" / "study.md"))
    p.add_argument(
        "--tag",
        default="study",
        help="fill the blocks <!-- TAG:NAME --> (e.g. study-full for full runs)",
    )
    args = p.parse_args()
    doc = Path(args.doc)
    images = doc.parent / "study"
    images.mkdir(exist_ok=True)
    text = doc.read_text()
    missing = []

    def fill(m: re.Match) -> str:
        name = m.group("name")
        report = Path(args.results) / (name + ("-quick" if args.quick else "")) / "report.md"
        if not report.is_file():
            missing.append(name)
            return m.group(0)
        return m.group(1) + render_block(report, images, f"{args.tag}_{name}") + m.group(4)

    doc.write_text(block_pattern(args.tag).sub(fill, text))
    if missing:
        print(f"no report for {missing} under {args.results}; their blocks are unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
