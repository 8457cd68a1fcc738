"""Import contracts (import-linter, configured in ``.importlinter``), the layers of docs/architecture.md:

* ``poser_env`` never imports ``poser_agents`` (the env package stays usable by any RL library);
* no import cycle between sibling modules or subpackages of either package (every import
  counts, the function-local ones too).

The second test runs the same contracts on a small package written here with a cycle and an
upward import, so the check is shown to fail when it should.
"""

from __future__ import annotations

import sys
from pathlib import Path

from importlinter.cli import lint_imports

CONFIG = Path(__file__).resolve().parents[1] / ".importlinter"


def _lint(config: Path, capsys) -> tuple[int, str]:
    code = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    return code, capsys.readouterr().out


def test_import_contracts_kept(capsys):
    code, out = _lint(CONFIG, capsys)
    assert code == 0, f"import contracts broken (see docs/architecture.md for the layers):\n{out}"
    assert "Contracts: 2 kept, 0 broken." in out


def test_import_contracts_catch_cycles_and_upward_imports(tmp_path, monkeypatch, capsys):
    for pkg in ("fake_env", "fake_agents"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "fake_env" / "a.py").write_text(
        "def f():\n    from fake_env import b  # a function-local import counts\n"
    )
    (tmp_path / "fake_env" / "b.py").write_text("from fake_env import a\n")
    (tmp_path / "fake_env" / "c.py").write_text("import fake_agents.tool\n")
    (tmp_path / "fake_agents" / "tool.py").write_text("")
    config = tmp_path / "contracts.ini"
    config.write_text(
        CONFIG.read_text().replace("poser_env", "fake_env").replace("poser_agents", "fake_agents")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, out = _lint(config, capsys)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("fake_env", "fake_agents")]:
            del sys.modules[name]
    assert code == 1
    assert "Contracts: 0 kept, 2 broken." in out
    assert "fake_env.c -> fake_agents.tool" in out
    assert "No cycles are allowed in fake_env." in out
