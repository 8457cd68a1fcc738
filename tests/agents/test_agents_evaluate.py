"""Confidence intervals, summaries and tables."""

from __future__ import annotations

import pytest

from poser_agents.error import AgentsConfigError
from poser_agents.evaluate import METRICS, ci95, format_table, summarise


def _rec(seed, success, usage=None):
    r = {m: 0.0 for m in METRICS}
    r.update(train_seed=seed, success=success, usage=usage or {"a": 1.0, "b": 0.0})
    return r


def test_ci95_is_the_student_t_half_width():
    # mean 2, sd 1, n 3 -> t(0.975, 2) = 4.303 -> 4.303 / sqrt(3)
    assert ci95([1.0, 2.0, 3.0]) == pytest.approx(4.3027 / 3**0.5, rel=1e-4)
    assert ci95([5.0]) == 0.0


def test_summarise_pools_episodes_and_reports_the_seed_spread():
    recs = [_rec(0, 1.0), _rec(0, 1.0), _rec(1, 0.0), _rec(1, 0.0)]
    s = summarise(recs)
    assert s["episodes"] == 4 and s["seeds"] == 2
    assert s["metrics"]["success"]["mean"] == 0.5
    assert s["metrics"]["success"]["seed_std"] == pytest.approx(2**0.5 / 2 * 1.0, rel=1e-6)
    assert s["usage"]["a"]["mean"] == 1.0
    table = format_table({"x": s}, metrics=("success",))
    assert "| x | 0.500 ±" in table
    with pytest.raises(AgentsConfigError, match="at least one episode"):
        summarise([])
