"""Critics and scorers: tiny VLM (VQAScore from logits), random-weight open_clip, a local HTTP server."""

import json

import numpy as np
import pytest

from poser_env.components import Critique
from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import ConfigError

CMD = Command(
    "draw three red circles",
    "generate",
    (
        Constraint(kind="count", subject=ObjectRef("circle", "red"), count=3),
        Constraint(kind="region", subject=ObjectRef("circle"), region="left"),
    ),
)
PROMPT = (Constraint(kind="background", style="a beach"),)
IMAGE = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def assert_well_formed(c: Critique, n_checks: int, n_prompt: int, threshold: float = 0.5):
    assert len(c.checks) == n_checks and len(c.prompt_checks) == n_prompt
    for check in (*c.checks, *c.prompt_checks):
        assert 0.0 <= check.score <= 1.0
        assert check.passed == (check.score >= threshold)
        assert check.expected == check.constraint.statement()
    for v in (c.alignment, c.prompt_alignment, c.fidelity, c.aesthetics, c.overall):
        assert 0.0 <= v <= 1.0
    assert c.accepted == all(ch.passed for ch in c.checks)
    assert np.isclose(c.alignment, np.mean([ch.score for ch in c.checks]))


def test_vlm_critic_scores_from_logits(tiny_vlm):
    from poser_env.suites.diffusers.critics import VLMCritic

    critic = VLMCritic(tiny_vlm, device="cpu", reflection="template")
    a = critic.judge(IMAGE, CMD, PROMPT)
    assert_well_formed(a, 2, 1)
    assert a == critic.judge(IMAGE, CMD, PROMPT)  # deterministic
    failed = [ch for ch in a.checks if not ch.passed]
    assert (a.reflection == "") == (not failed)
    assert all(ch.expected in a.reflection for ch in failed)


def test_vlm_yes_probability_is_question_dependent_and_batch_independent(tiny_vlm):
    from poser_env.suites.diffusers.scorers import VQAScoreModel

    vqa = VQAScoreModel(tiny_vlm, device="cpu", cache_size=0)
    qs = ["Are there exactly three red circles?", "Is the background a beach?", "Is there a dog?"]
    p = vqa.p_yes(IMAGE, qs)
    assert len(p) == 3 and all(0.0 < v < 1.0 for v in p)
    assert len(set(np.round(p, 6))) > 1
    # Batching must not change the scores (left padding keeps the answer position last).
    single = [vqa.p_yes(IMAGE, [q])[0] for q in qs]
    assert np.allclose(p, single, atol=1e-5)
    ratio = VQAScoreModel(tiny_vlm, device="cpu", formula="yes_no").p_yes(IMAGE, qs)
    assert all(
        r < v for r, v in zip(p, ratio, strict=True)
    )  # P(Yes) alone is smaller than Yes/(Yes+No)


def test_vlm_scores_repeated_questions_once(tiny_vlm):
    from poser_env.suites.diffusers.scorers import VQAScoreModel

    vqa = VQAScoreModel(tiny_vlm, device="cpu", cache_size=4)
    vqa.load()
    rows = []
    forward = vqa._model.forward

    def counting_forward(**inputs):
        rows.append(inputs["input_ids"].shape[0])
        return forward(**inputs)

    vqa._model.forward = counting_forward
    qs = ["Is there a dog?", "Is the background a beach?", "Is there a dog?"]
    p = vqa.p_yes(IMAGE, qs)
    assert rows == [2] and p[0] == p[2]  # a repeat within one call is asked once
    again = vqa.p_yes(IMAGE.copy(), ["Is the background a beach?", "Is there a dog?"])
    assert rows == [2] and again == [p[1], p[0]]  # same pixels: answered from the cache
    other = IMAGE.copy()
    other[0, 0] = 255 - other[0, 0]
    vqa.p_yes(other, ["Is there a dog?"])
    assert rows == [2, 1]  # other pixels: asked again
    uncached = VQAScoreModel(tiny_vlm, device="cpu", cache_size=0)
    assert np.allclose(uncached.p_yes(IMAGE, qs), p, atol=1e-5)
    vqa.p_yes(IMAGE, ["q1?", "q2?", "q3?", "q4?"])
    assert len(vqa._scores) == 4  # bounded by cache_size
    with pytest.raises(ConfigError, match="cache_size must be >= 0"):
        VQAScoreModel(tiny_vlm, cache_size=-1)


def test_vlm_critic_generates_reflection_and_handles_command_without_constraints(tiny_vlm):
    from poser_env.suites.diffusers.critics import VLMCritic

    critic = VLMCritic(tiny_vlm, device="cpu", reflection="generate", threshold=0.99)
    c = critic.judge(IMAGE, Command("make it look like a watercolor", "restyle"), ())
    assert len(c.checks) == 1 and c.checks[0].constraint.kind == "text"
    assert "watercolor" in c.checks[0].expected
    assert not c.accepted and c.reflection.startswith("Not yet true:")
    prompt_only = critic.judge(IMAGE, None, PROMPT)
    assert prompt_only.checks == () and prompt_only.accepted == prompt_only.prompt_satisfied


def test_vlm_critic_missing_model_is_a_clear_error():
    pytest.importorskip("transformers")
    from poser_env.error import ModelLoadError
    from poser_env.suites.diffusers.critics import VLMCritic

    with pytest.raises(
        ModelLoadError, match=r"(?s)'no-org/no-vlm' for the VLM.*hf download no-org/no-vlm"
    ):
        VLMCritic("no-org/no-vlm", device="cpu", local_files_only=True).judge(IMAGE, CMD, PROMPT)


def test_clip_critic_and_scorer_with_random_weights():
    pytest.importorskip("open_clip")
    from poser_env.suites.diffusers.critics import CLIPCritic
    from poser_env.suites.diffusers.scorers import CLIPScoreModel, CLIPScorer

    clip = CLIPScoreModel("ViT-B-32", pretrained=None, device="cpu")
    critic = CLIPCritic(clip=clip)
    c = critic.judge(IMAGE, CMD, PROMPT)
    assert_well_formed(c, 2, 1)
    assert c.checks[0].observed.startswith("CLIP cosine")
    cos = clip.cosine(IMAGE, [CMD.constraints[0].statement()])[0]
    assert np.isclose(c.checks[0].score, np.clip((cos - 0.15) / 0.2, 0, 1))
    s = CLIPScorer(clip).score(IMAGE, "three red circles")
    assert s["clipscore"] == pytest.approx(
        2.5 * max(clip.cosine(IMAGE, ["three red circles"])[0], 0.0)
    )


def test_vqa_scorer(tiny_vlm):
    from poser_env.suites.diffusers.scorers import VQAScoreModel, VQAScorer

    s = VQAScorer(VQAScoreModel(tiny_vlm, device="cpu")).score(
        IMAGE, "three red circles", CMD.constraints
    )
    assert set(s) == {"vqascore", "constraint_vqascore", "constraint_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in s.values())


def _verdict(n, passed=True, score=0.9):
    return json.dumps(
        {
            "checks": [
                {"index": i, "passed": passed, "score": score, "observed": f"seen {i}"}
                for i in range(n)
            ],
            "fidelity": 0.8,
            "aesthetics": 0.7,
            "reflection": "add more red",
        }
    )


def test_http_critic_valid_answer(http_server):
    pytest.importorskip("pydantic")
    from poser_env.suites.diffusers.critics import HTTPCritic

    server = http_server([(200, _verdict(3, passed=False, score=0.2))])
    critic = HTTPCritic(server.base_url, "judge-model", api_key="k", backoff=0)
    c = critic.judge(IMAGE, CMD, PROMPT)
    assert_well_formed(c, 2, 1)
    assert not c.accepted and c.reflection == "add more red" and c.checks[1].observed == "seen 1"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    assert req["body"]["model"] == "judge-model"
    parts = req["body"]["messages"][1]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "0. there are exactly three red circles" in parts[0]["text"]


def test_http_critic_retries_malformed_and_server_errors_then_succeeds(http_server):
    pytest.importorskip("pydantic")
    from poser_env.suites.diffusers.critics import HTTPCritic

    server = http_server(
        [(500, "overloaded"), (200, "not json"), (200, _verdict(2)), (200, _verdict(3))]
    )
    c = HTTPCritic(server.base_url, "m", backoff=0, max_retries=3).judge(IMAGE, CMD, PROMPT)
    assert c.accepted and len(server.requests) == 4
    # The invalid answer and the reason were sent back for correction.
    assert "not valid" in server.requests[3]["body"]["messages"][-1]["content"]


def test_http_critic_reports_instead_of_scoring_after_retries(http_server):
    pytest.importorskip("pydantic")
    from poser_env.suites.diffusers.critics import HTTPCritic
    from poser_env.suites.diffusers.openai_client import HTTPComponentError

    server = http_server([(200, '{"checks": [], "fidelity": 2}')])
    with pytest.raises(
        HTTPComponentError, match=r"after 3 attempt\(s\).*invalid answer.*ValidationError"
    ):
        HTTPCritic(server.base_url, "m", backoff=0, max_retries=2).judge(IMAGE, CMD, PROMPT)
    assert len(server.requests) == 3
    bad = http_server([(401, "bad key")])
    with pytest.raises(HTTPComponentError, match=r"after 1 attempt\(s\).*HTTP 401"):
        HTTPCritic(bad.base_url, "m", backoff=0, max_retries=5).judge(IMAGE, CMD, PROMPT)


def test_http_client_times_out(http_server):
    pytest.importorskip("pydantic")
    from poser_env.suites.diffusers.critics import HTTPCritic
    from poser_env.suites.diffusers.openai_client import HTTPComponentError

    # Nothing listens on this port once the server is closed: every attempt fails fast.
    server = http_server([(200, "{}")])
    url = server.base_url
    server.close()
    with pytest.raises(HTTPComponentError, match=r"after 2 attempt\(s\).*ConnectError"):
        HTTPCritic(url, "m", backoff=0, max_retries=1, timeout=2).judge(IMAGE, CMD, PROMPT)


def test_geneval_scorer_checks_counts_colours_and_positions():
    from poser_env.suites.diffusers.scorers import Detection, GenEvalScorer

    img = np.zeros((90, 90, 3), np.uint8)
    img[10:30, 5:25] = (220, 20, 20)  # red box, left
    img[60:80, 65:85] = (20, 20, 220)  # blue box, right

    def detector(image, nouns):
        return [
            Detection("cup", 0.9, (5, 10, 25, 30)),
            Detection("cup", 0.8, (65, 60, 85, 80)),
            Detection("cup", 0.1, (40, 40, 50, 50)),
        ]

    scorer = GenEvalScorer(detector)
    cup = ObjectRef("cup")
    good = [
        Constraint(kind="count", subject=cup, count=2),
        Constraint(kind="count", subject=ObjectRef("cup", "red"), count=1),
        Constraint(
            kind="relation",
            subject=ObjectRef("cup", "red"),
            relation="left of",
            other=ObjectRef("cup", "blue"),
        ),
        Constraint(kind="region", subject=ObjectRef("cup", "blue"), region="right"),
        Constraint(kind="background", style="beach"),
    ]
    s = scorer.score(img, "two cups", good)
    assert s == {"geneval_accuracy": 1.0, "geneval_all": 1.0, "geneval_skipped": 1.0}
    bad = [
        Constraint(kind="count", subject=cup, count=3),
        Constraint(kind="region", subject=ObjectRef("cup", "red"), region="right"),
    ]
    assert scorer.score(img, "three cups", bad)["geneval_accuracy"] == 0.0
