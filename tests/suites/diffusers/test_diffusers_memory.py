"""The GPU memory plan: computed from the spec table, the defaults taken from it, presets that fit."""

from __future__ import annotations

import pytest

from poser_env.error import ConfigError, UnknownNameError
from poser_env.suites.diffusers.memory import (
    DEFAULT_EXPERT_BUDGET_GB,
    PRESETS,
    main,
    memory_plan,
    preset_for,
    preset_plan,
)
from poser_env.suites.diffusers.models import DEFAULT_CATALOG


def test_default_configuration_fits_80gb_with_critic_and_extractor_resident():
    plan = preset_plan("80gb")
    resident = dict(plan.resident)
    assert resident["critic `Qwen/Qwen2.5-VL-7B-Instruct` weights"] == 16.6
    assert resident["extractor `Qwen/Qwen2.5-7B-Instruct` weights"] == 15.2
    assert len(plan.groups) == 9 and sum(len(names) for _, _, names in plan.groups) == 12
    assert plan.fits and plan.largest_group_gb <= plan.expert_budget_gb
    # Everything on the card adds up to the card, nothing more.
    total = sum(gb for _, gb in plan.resident) + plan.activation_gb + plan.expert_budget_gb
    assert total == pytest.approx(80.0, abs=0.1) and total <= 80.0
    assert DEFAULT_EXPERT_BUDGET_GB == plan.expert_budget_gb
    # The two 12B FLUX models (33.5 GB each) can never be resident together.
    assert 2 * 33.5 > plan.expert_budget_gb


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_fits_its_card(name):
    preset = PRESETS[name]
    plan = preset_plan(preset)
    assert plan.fits, plan.problems
    assert plan.gpu_gb == preset.gpu_gb
    assert preset_for(preset.gpu_gb) is preset


def test_the_old_defaults_do_not_fit_and_the_plan_says_why():
    # The previous default: every expert with a 70 GB expert budget next to the 7B critic and extractor.
    plan = memory_plan(80, DEFAULT_CATALOG)
    assert 70.0 > plan.expert_budget_gb
    small = memory_plan(48, DEFAULT_CATALOG)
    assert not small.fits
    assert (
        "FLUX.1-schnell (33.5 GB)" in small.problems[0] and "cpu_offload=True" in small.problems[0]
    )
    none_left = memory_plan(24, DEFAULT_CATALOG)
    assert not none_left.fits and none_left.expert_budget_gb == 0.0
    with pytest.raises(ConfigError, match="gpu_gb must be a number > 0"):
        memory_plan(0, DEFAULT_CATALOG)


def test_unknown_component_is_planned_with_a_warning():
    with pytest.warns(UserWarning, match="'someorg/vlm' is not in the memory table"):
        plan = memory_plan(80, DEFAULT_CATALOG, critic_model="someorg/vlm", extractor_model=None)
    assert dict(plan.resident)["critic `someorg/vlm` weights"] == 16.0


def test_a_local_checkpoint_is_planned_from_its_weight_files(tiny_vlm, recwarn):
    plan = memory_plan(80, DEFAULT_CATALOG, critic_model=tiny_vlm, extractor_model=None)
    weights = dict(plan.resident)[f"critic `{tiny_vlm}` weights"]
    assert 0 < weights < 0.01 and not [w for w in recwarn if "memory table" in str(w.message)]


def test_pool_plan_command_prints_the_plan(capsys):
    from poser_env.__main__ import main as cli

    assert cli(["pool", "plan", "--gpu-gb", "80"]) == 0
    out = capsys.readouterr().out
    assert "Memory plan for one 80 GB GPU, preset '80gb'" in out
    assert (
        f"| **expert weight budget (`memory_budget_gb`)** | **{DEFAULT_EXPERT_BUDGET_GB:.1f}** |"
        in out
    )
    assert "Fits: yes." in out and "not measured on a GPU" in out
    assert main(["--gpu-gb", "30"]) == 0
    assert "preset '24gb'" in capsys.readouterr().out
    assert main(["--all"]) == 0
    assert capsys.readouterr().out.count("Memory plan for one") == 3
    assert main(["--preset", "48GB", "--gpu-gb", "48"]) == 0  # case and spaces do not matter
    with pytest.raises(SystemExit):
        main(["--preset", "80gbb"])
    assert (
        "Unknown memory preset '80gbb'. Did you mean '80gb'? Known memory presets: 24gb, 48gb, 80gb."
        in capsys.readouterr().err
    )


def test_suite_defaults_come_from_the_plan_and_presets_apply():
    pytest.importorskip("diffusers")
    from poser_env.suites.diffusers import make_diffusers_suite

    suite = make_diffusers_suite(device="cpu")
    assert len(suite.experts) == 12
    assert suite.experts[0].loader.memory_budget_gb == DEFAULT_EXPERT_BUDGET_GB
    assert suite.image_size == (
        1024,
        1024,
    )  # the largest native resolution: editors get native-size inputs
    assert suite.critic.vqa.model_name == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert suite.extractor.model_name == "Qwen/Qwen2.5-7B-Instruct"
    small = make_diffusers_suite(device="cpu", preset="24gb")
    names = [e.name for e in small.experts]
    assert "flux-schnell" not in names and len(names) == 10
    assert small.experts[names.index("sd3.5-medium")].spec.cpu_offload
    assert (
        small.extractor.name == "rules"
        and small.critic.vqa.model_name == "Qwen/Qwen2-VL-2B-Instruct"
    )
    assert small.experts[0].loader.memory_budget_gb == preset_plan("24gb").expert_budget_gb
    only_512 = make_diffusers_suite(
        device="cpu", experts=["sd-turbo", "instruct-pix2pix"], extractor="rules"
    )
    assert only_512.image_size == (512, 512)
    with pytest.raises(UnknownNameError, match="Unknown memory preset '80'.*Did you mean '80gb'"):
        make_diffusers_suite(device="cpu", preset="80")
