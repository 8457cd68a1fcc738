"""Extractors: rules (no model), tiny local LLM, scripted completions, local HTTP server."""

import json

import pytest

from poser_env.components import ConstraintCheck, Critique
from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import PromptParseError
from poser_env.suites.diffusers.extractors import RuleExtractor

PROMPT = (
    "Three red bottles on a wooden table, then add a small blue cup to the left of the bottles. "
    "Finally, make the background a sunny beach. Remove the table."
)


def test_rules_split_classify_and_recognise_constraints():
    plan = RuleExtractor().extract(PROMPT)
    assert [c.kind for c in plan.commands] == ["generate", "add", "restyle", "remove"]
    first = plan.commands[0].constraints
    assert Constraint(kind="count", subject=ObjectRef("bottle", "red"), count=3) in first
    assert plan.commands[1].constraints[0] == Constraint(
        kind="relation",
        subject=ObjectRef("cup", "blue", "small"),
        relation="left of",
        other=ObjectRef("bottle"),
    )
    assert plan.commands[2].constraints == (Constraint(kind="background", style="sunny beach"),)
    assert plan.commands[3].constraints == (
        Constraint(kind="count", subject=ObjectRef("table"), count=0),
    )
    # The later removal supersedes the earlier count of tables in the whole-prompt constraints.
    assert Constraint(kind="count", subject=ObjectRef("table"), count=0) in plan.constraints
    assert Constraint(kind="count", subject=ObjectRef("table"), count=1) not in plan.constraints


def test_rules_keep_unrecognised_clause_as_text_and_reject_empty():
    plan = RuleExtractor().extract("Dreamy misty light everywhere")
    assert plan.commands[0].constraints == (
        Constraint(kind="text", text="Dreamy misty light everywhere"),
    )
    assert plan.constraints == ()
    with pytest.raises(PromptParseError, match="the prompt is empty"):
        RuleExtractor().extract("   ")


def test_rules_editing_task_starts_with_an_edit_and_reflection_adds_failed_checks():
    import numpy as np

    plan = RuleExtractor().extract("Make the sky stormy.", image=np.zeros((8, 8, 3), np.uint8))
    assert plan.commands[0].kind == "refine"
    cmd = Command(
        "three red bottles",
        "generate",
        (Constraint(kind="count", subject=ObjectRef("bottle", "red"), count=3),),
    )
    check = ConstraintCheck(
        cmd.constraints[0], "there are exactly three red bottles", "P(yes)=0.10", False, 0.1
    )
    crit = Critique((check,), (), 0.1, 0.1, 0.5, 0.5, 0.2, False, "")
    new = RuleExtractor().reflect(cmd, crit)
    assert new.text == "three red bottles (make sure there are exactly three red bottles)"
    assert new.reflection_of == "three red bottles" and new.constraints == cmd.constraints
    again = RuleExtractor().reflect(new, crit)
    assert again.text == new.text  # rewrites the original, does not pile up


GOOD_PLAN = json.dumps(
    {
        "commands": [
            {
                "text": "three red bottles",
                "kind": "generate",
                "constraints": [
                    {"kind": "count", "subject": {"noun": "bottle", "color": "red"}, "count": 3}
                ],
            },
            {"text": "add a cup", "kind": "add", "constraints": []},
        ],
        "constraints": [{"kind": "background", "style": "beach"}],
    }
)
BAD_PLAN = json.dumps(
    {
        "commands": [
            {
                "text": "x",
                "kind": "generate",
                "constraints": [{"kind": "count", "subject": {"noun": "cup"}}],
            }
        ]
    }
)


def scripted(answers):
    pytest.importorskip("pydantic")
    from poser_env.suites.diffusers.extractors import _JSONExtractor

    class Scripted(_JSONExtractor):
        name = "scripted"

        def __init__(self):
            super().__init__()
            self.seen = []

        def complete(self, messages):
            self.seen.append(messages)
            return answers.pop(0) if len(answers) > 1 else answers[0]

    return Scripted()


def test_json_plan_is_validated_and_retried_with_the_error():
    ex = scripted([BAD_PLAN, "```json\n" + GOOD_PLAN + "\n```"])
    plan = ex.extract("three red bottles, then add a cup")
    assert [c.kind for c in plan.commands] == ["generate", "add"]
    assert plan.commands[0].constraints[0] == Constraint(
        kind="count", subject=ObjectRef("bottle", "red"), count=3
    )
    assert plan.constraints == (Constraint(kind="background", style="beach"),)
    assert "needs ['count']" in ex.seen[1][-1]["content"]


def test_json_extractor_gives_up_with_prompt_parse_error():
    ex = scripted(['{"commands": []}'])
    with pytest.raises(PromptParseError, match=r"no valid JSON after 3 attempt\(s\)"):
        ex.extract("anything")
    assert len(ex.seen) == 3


def test_tiny_llm_runs_generation_and_reports_invalid_output(tiny_llm):
    from poser_env.suites.diffusers.extractors import LLMExtractor

    ex = LLMExtractor(tiny_llm, device="cpu", max_new_tokens=8, max_retries=1)
    text = ex.complete([{"role": "user", "content": "hello"}])
    assert isinstance(text, str)
    # A random model cannot write a valid plan: reported, never guessed.
    with pytest.raises(PromptParseError, match=r"llm extractor: no valid JSON after 2 attempt"):
        ex.extract("three red bottles")
    crit = Critique((), (), 0.0, 0.0, 0.0, 0.0, 0.0, False, "")
    with pytest.warns(UserWarning, match="could not reflect"):
        assert (
            ex.reflect(Command("x", "generate"), crit) is None
        )  # rules: nothing failed, retry unchanged


def test_http_extractor_against_local_server(http_server):
    pytest.importorskip("pydantic")
    from poser_env.suites.diffusers.extractors import HTTPExtractor

    server = http_server([(503, "busy"), (200, GOOD_PLAN)])
    ex = HTTPExtractor(server.base_url, "planner", backoff=0)
    plan = ex.extract("three red bottles, then add a cup")
    assert len(plan.commands) == 2 and len(server.requests) == 2
    assert server.requests[1]["body"]["response_format"] == {"type": "json_object"}
