"""VQAScore as published (t2v_metrics), the scorer kept apart from the critic, and questions
whose number agrees with the objects asked for."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from poser_env.suites.diffusers.critics import CLIPCritic, VLMCritic, constraint_text, known_counts  # noqa: E402
from poser_env.suites.diffusers.scorers import (  # noqa: E402
    DEFAULT_SCORER_MODEL,
    VQASCORE_QUESTION,
    CLIPScorer,
    VQAScoreModel,
    VQAScorer,
    check_independent,
    critic_family,
    default_scorer,
    model_family,
)

IMAGE = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


class StubLM(torch.nn.Module):
    """Known logits at the answer position: Yes=2, No=1, "yes"=3, every other token 0."""

    def __init__(self, tok, vocab: int):
        super().__init__()
        self.tok, self.vocab, self.texts = tok, vocab, []
        self.ids = {w: tok.encode(w, add_special_tokens=False) for w in ("Yes", "No", "yes")}

    def forward(self, input_ids, **kwargs):
        self.texts += self.tok.batch_decode(input_ids, skip_special_tokens=False)
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.vocab)
        for word, value in (("Yes", 2.0), ("No", 1.0), ("yes", 3.0)):
            logits[:, -1, self.ids[word][0]] = value
        return SimpleNamespace(logits=logits)


@pytest.fixture
def stubbed(tiny_vlm):
    def make(formula="vqascore"):
        vqa = VQAScoreModel(tiny_vlm, device="cpu", cache_size=0, formula=formula)
        vqa.load()
        tok = vqa._processor.tokenizer
        vqa._model = StubLM(tok, vocab=len(tok))
        return vqa

    return make


def test_vqascore_is_the_unnormalised_probability_of_the_single_yes_token(stubbed):
    vqa = stubbed()
    stub = vqa._model
    assert all(len(ids) == 1 for ids in stub.ids.values())
    # By hand: softmax over the whole vocabulary at the answer position; only the token of
    # "Yes" counts (not "yes", which has the highest logit here).
    others = stub.vocab - 3
    expected = math.exp(2) / (math.exp(2) + math.exp(1) + math.exp(3) + others * math.exp(0))
    scorer = VQAScorer(vqa)
    got = scorer.score(IMAGE, "a red cube")
    assert got["vqascore"] == pytest.approx(expected, rel=1e-6)
    # The published question, verbatim, inside the chat template.
    assert 'Does this figure show "a red cube"? Please answer Yes or No.' in stub.texts[0]
    assert (
        VQASCORE_QUESTION.format("a red cube")
        == 'Does this figure show "a red cube"? Please answer Yes or No.'
    )


def test_yes_no_ratio_is_kept_under_its_own_name(stubbed):
    vqa = stubbed("yes_no")
    assert vqa.p_yes(IMAGE, ["Is there a cube?"])[0] == pytest.approx(
        math.exp(2) / (math.exp(2) + math.exp(1)), rel=1e-6
    )
    with pytest.raises(
        ConfigError, match=r"formula must be one of \('vqascore', 'yes_no'\), got 'normalized'"
    ):
        VQAScoreModel("x", formula="normalized")


def test_a_tokenizer_that_splits_yes_is_refused(tiny_vlm, monkeypatch):
    vqa = VQAScoreModel(tiny_vlm, device="cpu")
    from transformers import PreTrainedTokenizerFast

    real = PreTrainedTokenizerFast.encode
    monkeypatch.setattr(
        PreTrainedTokenizerFast,
        "encode",
        lambda self, text, **kw: [5, 6] if text == "Yes" else real(self, text, **kw),
    )
    with pytest.raises(
        ConfigError, match=r"encodes 'Yes' as 2 tokens \[5, 6\]; VQAScore needs it to be one token"
    ):
        vqa.load()


def test_the_default_scorer_is_another_family_than_the_default_critic():
    critic = VLMCritic(device="cpu")  # nothing loads
    assert critic_family(critic) == "qwen"
    scorer = default_scorer(critic, device="cpu")
    assert scorer.vqa.model_name == DEFAULT_SCORER_MODEL and scorer.family == "llava"
    assert VQAScorer(device="cpu").vqa.model_name == DEFAULT_SCORER_MODEL  # the class default too
    llava_critic = VLMCritic(DEFAULT_SCORER_MODEL, device="cpu")
    assert default_scorer(llava_critic, device="cpu").family == "qwen"
    assert (
        model_family("llava-hf/llava-onevision-qwen2-7b-ov-hf") == "qwen"
    )  # the language model decides


def test_a_scorer_of_the_critics_family_is_refused():
    critic = VLMCritic(device="cpu")
    same = VQAScorer("Qwen/Qwen2-VL-2B-Instruct", device="cpu")
    with pytest.raises(
        ConfigError,
        match=r"scorer 'vqascore' uses a 'qwen'-family model, the same family as the reward critic \('qwen'\)",
    ):
        check_independent(critic, [same])
    check_independent(critic, [same], allow_same_family=True)  # knowingly
    with pytest.raises(ConfigError, match="same family as the reward critic"):
        check_independent(
            critic, [VQAScorer(critic.vqa)], allow_same_family=True
        )  # the very same model: never
    clip_critic = CLIPCritic(pretrained=None, device="cpu")
    with pytest.raises(ConfigError, match="'clip'-family"):
        check_independent(clip_critic, [CLIPScorer(clip_critic.clip)])
    check_independent(clip_critic, [default_scorer(clip_critic, device="cpu")])


def test_region_and_relation_questions_agree_in_number():
    cat, dog = ObjectRef("cat"), ObjectRef("dog", "brown")
    region = Constraint(kind="region", subject=cat, region="left")
    relation = Constraint(kind="relation", subject=cat, relation="left of", other=dog)
    assert constraint_text(region, {}, question=True) == "Is the cat on the left?"
    assert constraint_text(region, {}, question=False) == "the cat is on the left"
    assert constraint_text(relation, {}, question=True) == "Is the cat left of the brown dog?"
    three = (
        Constraint(kind="count", subject=cat, count=3),
        Constraint(kind="count", subject=dog, count=2),
    )
    counts = known_counts(three)
    assert constraint_text(region, counts, question=True) == "Are the cats on the left?"
    assert (
        constraint_text(relation, counts, question=True) == "Are the cats left of the brown dogs?"
    )
    assert (
        constraint_text(three[0], counts, question=True) == three[0].question()
    )  # counts unchanged


def test_the_vlm_critic_asks_the_singular_question(tiny_vlm):
    critic = VLMCritic(tiny_vlm, device="cpu", reflection="template")
    asked = []
    real = critic.vqa.p_yes
    critic.vqa.p_yes = lambda image, qs: asked.extend(qs) or real(image, qs)
    one = Command(
        "draw a cat on the left",
        "generate",
        (
            Constraint(kind="count", subject=ObjectRef("cat"), count=1),
            Constraint(kind="region", subject=ObjectRef("cat"), region="left"),
        ),
    )
    critic.judge(IMAGE, one, ())
    assert "Is the cat on the left?" in asked and "Are the cats on the left?" not in asked
