"""The default pool table and expert specs (no torch needed except for the class-name check)."""

import pytest

from poser_env.error import ConfigError
from poser_env.suites.diffusers.models import (
    DEFAULT_CATALOG,
    KNOWN_PIPELINES,
    ExpertSpec,
    catalog_table,
)


def test_default_pool_has_twelve_models_with_enough_of_each_kind():
    assert len(DEFAULT_CATALOG) == 12
    kinds = [s.kind for s in DEFAULT_CATALOG]
    assert kinds.count("t2i") >= 5 and kinds.count("i2i") >= 5
    assert len({s.name for s in DEFAULT_CATALOG}) == 12
    assert all(s.licence and s.memory_gb > 0 and s.description for s in DEFAULT_CATALOG)


def test_every_pipeline_class_exists_in_installed_diffusers():
    diffusers = pytest.importorskip("diffusers")
    names = {s.pipeline for s in DEFAULT_CATALOG} | set(KNOWN_PIPELINES)
    missing = sorted(n for n in names if not hasattr(diffusers, n))
    assert missing == [], f"diffusers {diffusers.__version__} lacks {missing}"


def test_pool_table_lists_every_model():
    table = catalog_table()
    for s in DEFAULT_CATALOG:
        assert f"`{s.model}`" in table and s.licence in table


def test_spec_validation_messages():
    base = dict(name="x", model="m", pipeline="AutoPipelineForImage2Image", guidance=0.0)
    with pytest.raises(ConfigError, match="family must be one of"):
        ExpertSpec(family="inpaint", steps=2, **base)
    with pytest.raises(ConfigError, match="needs 0 < strength <= 1"):
        ExpertSpec(family="image2image", steps=2, **base)
    with pytest.raises(
        ConfigError, match=r"steps \* strength must be >= 1.*Raise steps to at least 4"
    ):
        ExpertSpec(family="image2image", steps=2, strength=0.3, **base)
    with pytest.raises(ConfigError, match="dtype must be"):
        ExpertSpec(family="text2image", steps=2, dtype="int8", **base)


def test_spec_dict_round_trip_and_unknown_field():
    spec = DEFAULT_CATALOG[0]
    assert ExpertSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(
        ConfigError,
        match=r"Unknown argument 'stepz' for ExpertSpec 'sd-turbo'\. Did you mean 'steps'\? "
        r"Valid arguments: .*activation_gb.*variant",
    ):
        ExpertSpec.from_dict({**spec.to_dict(), "stepz": 3})


def test_override_typos_name_the_closest_field_and_list_all():
    spec = DEFAULT_CATALOG[0]
    with pytest.raises(
        ConfigError,
        match=r"Unknown argument 'guidence' for ExpertSpec 'sd-turbo' overrides\. "
        r"Did you mean 'guidance'\? Valid arguments: .*batch.*steps",
    ):
        spec.with_overrides(guidence=2.0)
    assert spec.with_overrides(steps=3, resolution=[64, 64]).resolution == (64, 64)
    with pytest.raises(ConfigError, match="memory_gb must be a number >= 0"):
        spec.with_overrides(memory_gb=-1)
