"""The reward of ``ImagePoser``: a documented, fully configurable dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from poser_env.error import ConfigError


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms. Every step's reward is

    ``progress * (score_t - score_{t-1})``
    ``+ command_bonus`` if the critic accepted the command
    ``- drop_penalty`` if the command was dropped after ``max_attempts`` failures
    ``- cost_weight * cost`` (the expert's cost in seconds; penalises long pipelines)
    ``- step_penalty``
    ``- invalid_action_penalty`` for an image-to-image expert before any image exists
    ``- failure_penalty`` if an expert, the critic or the extractor raised

    and the last step of an episode adds ``final_weight * final_score +
    success_bonus * success``. ``score_t`` is the critic's whole-prompt alignment of the
    current image in [0, 1]; ``final_score`` is the whole-prompt alignment of the final
    image against the task's reference constraints; ``success`` is 1 when every one holds.

    Attributes:
        progress: Weight of the change in whole-prompt score.
        command_bonus: Bonus per accepted command.
        drop_penalty: Penalty per dropped command.
        cost_weight: Penalty per second of expert cost.
        step_penalty: Penalty per step.
        invalid_action_penalty: Penalty for an invalid (masked) action.
        failure_penalty: Penalty when a component raises (the episode is truncated).
        final_weight: Weight of the final whole-prompt score.
        success_bonus: Bonus when the final image satisfies the whole prompt.
    """

    progress: float = 1.0
    command_bonus: float = 0.25
    drop_penalty: float = 0.25
    cost_weight: float = 0.02
    step_penalty: float = 0.02
    invalid_action_penalty: float = 0.1
    failure_penalty: float = 1.0
    final_weight: float = 0.5
    success_bonus: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"RewardConfig.{f.name} must be a finite number, got {v!r}.")

    @classmethod
    def coerce(cls, value: RewardConfig | dict[str, Any] | None) -> RewardConfig:
        """Accept a RewardConfig, a dict of its fields, or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigError(
                    f"Unknown reward field(s) {unknown}; RewardConfig has {sorted(known)}."
                )
            return cls(**value)
        raise ConfigError(
            f"reward must be a RewardConfig, a dict or None, got {type(value).__name__}."
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
