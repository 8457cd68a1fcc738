"""docs/errors.md is checked against the error classes in the code."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"


def _error_classes() -> dict[str, str]:
    """Every class that derives from PoserError, found in the source (no import needed):
    name -> module."""
    found: dict[str, tuple[str, list[str]]] = {}
    for package in ("poser_env", "poser_agents"):
        for file in (ROOT / package).rglob("*.py"):
            module = ".".join(file.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.ClassDef):
                    bases = [
                        b.id
                        if isinstance(b, ast.Name)
                        else b.attr
                        if isinstance(b, ast.Attribute)
                        else ""
                        for b in node.bases
                    ]
                    found[node.name] = (module, bases)
    errors = {"PoserError": "poser_env.error"}
    grew = True
    while grew:
        grew = False
        for name, (module, bases) in found.items():
            if name not in errors and any(b in errors for b in bases):
                errors[name] = module
                grew = True
    return errors


def _sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^### `(\w+)`\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_error_class_is_documented_with_its_bases():
    sections = _sections()
    errors = _error_classes()
    assert {"ConfigError", "RunLockedError", "OutputPathError", "CacheError"} <= set(errors)
    missing = sorted(set(errors) - set(sections))
    assert not missing, f"error classes without a section in docs/errors.md: {missing}"
    stale = sorted(set(sections) - set(errors))
    assert not stale, f"docs/errors.md describes classes that do not exist: {stale}"
    for name, module in errors.items():
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:  # an optional extra is missing: the name check above still holds
            continue
        bases = ", ".join(f"`{b.__name__}`" for b in cls.__bases__)
        assert f"Bases: {bases}." in sections[name], (
            f"{name}: expected 'Bases: {bases}.' in its section"
        )
        assert "What to do" in " ".join(sections[name].split()) or name == "PoserError", (
            f"{name}: the section must say what to do"
        )


def test_the_hierarchy_tree_lists_every_class():
    tree = DOC.read_text().split("## The hierarchy", 1)[1].split("```")[1]
    assert sorted(set(_error_classes()) - set(re.findall(r"(\w+Error)", tree))) == []
