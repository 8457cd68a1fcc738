"""The package imports without the 'models' extra, and the suite says which extra to install."""

import subprocess
import sys
import textwrap


def test_import_without_extra_and_missing_dependency_message():
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "diffusers", "transformers", "open_clip", "httpx", "pydantic"):
                    raise ImportError(f"blocked {name}")
        sys.meta_path.insert(0, Block())
        import poser_env.suites.diffusers as d
        from poser_env.suites.diffusers import models, tasks, extractors, critics, scorers
        assert len(d.DEFAULT_CATALOG) == 12
        plan = extractors.RuleExtractor().extract("Two red cups. Then remove one cup.")
        assert len(plan.commands) == 2
        from poser_env.error import MissingDependencyError
        try:
            d.make_diffusers_suite()
        except MissingDependencyError as e:
            print(e)
        else:
            raise SystemExit("no error")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "The 'diffusers' suite needs the package 'torch'" in out.stdout
    assert 'pip install "image-poser[models]"' in out.stdout
