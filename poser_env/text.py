"""Text handling shared by the observation space and input validation, and the text space."""

from __future__ import annotations

import string
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import read_from_shared_memory

#: Characters allowed in every text observation: printable ASCII, space included.
CHARSET: frozenset[str] = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")

_TYPOGRAPHIC = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
    }
)


def normalise(text: str) -> str:
    """Collapse whitespace and map typographic quotes and dashes to ASCII."""
    return " ".join(text.translate(_TYPOGRAPHIC).split())


def invalid_chars(text: str) -> list[str]:
    """Characters of ``text`` outside :data:`CHARSET`, sorted and unique."""
    return sorted({c for c in text if c not in CHARSET})


def fit(text: str, max_length: int) -> str:
    """Make ``text`` a valid observation string: replace foreign characters, truncate."""
    if not (text.isascii() and text.isprintable() and len(text) <= max_length and "  " not in text):
        text = "".join(c if c in CHARSET else "?" for c in normalise(text))
    if len(text) > max_length:
        text = text[: max_length - 3] + "..."
    return text


# ----------------------------------------------------------------------------- the space
#: What Stable-Baselines3 users need to read when they hand it the raw env.
SB3_HINT = (
    "ImagePoser's observations hold text (gymnasium.spaces.Text), which Stable-Baselines3 cannot use. "
    "Wrap the env first: poser_env.wrappers.EncodeObservation(env, encoder='hashed') (no torch) or "
    "encoder='minilm', then use MultiInputPolicy (MaskablePPO reads env.action_masks() through the wrapper)."
)
_SB3_MODULES = ("stable_baselines3", "sb3_contrib")


class PoserText(spaces.Text):
    """``gymnasium.spaces.Text`` that also works in ``AsyncVectorEnv``'s shared memory.

    Gymnasium (1.4) reads a ``Text`` field out of the shared memory once, when the
    ``AsyncVectorEnv`` is built, into a tuple of strings that it then returns after every
    step: the text observations of ``gym.make_vec(..., vectorization_mode="async")`` (whose
    default is ``shared_memory=True``) would stay as ``max_length`` spaces forever. For this
    class the shared-memory reader returns a live view instead, which decodes the current
    strings when read and becomes a plain tuple of strings when copied (the vector env's
    default ``copy=True`` deep-copies every observation it returns).

    Everything else is ``spaces.Text``: sampling, ``contains``, flattening, equality.
    Stable-Baselines3 cannot use text observations; its vectoriser reads ``shape`` of every
    subspace, and gets a ``TypeError`` that names :class:`poser_env.wrappers.EncodeObservation`
    instead of ``None`` (every other caller still gets ``None``).
    """

    @property
    def shape(self) -> None:
        # SB3's DummyVecEnv does np.zeros((n, *tuple(space.shape))): with None it fails with
        # "'NoneType' object is not iterable". Name the fix instead, for SB3's callers only.
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith(_SB3_MODULES):
            raise TypeError(SB3_HINT)
        return None


class SharedTextView(Sequence):
    """The current strings of a :class:`PoserText` field in ``AsyncVectorEnv`` shared memory.

    Reading an item decodes it from the shared buffer now; ``copy.deepcopy`` and pickling
    give a plain ``tuple`` of strings (what a ``SyncVectorEnv`` returns).
    """

    def __init__(self, space: spaces.Text, memory: Any, n: int):
        self._memory = memory
        self._n = int(n)
        self._length = space.max_length
        self._pad = len(space.character_set)
        self._chars = np.array(list(space.character_list) + [""], dtype=object)

    def _rows(self) -> np.ndarray:
        return np.frombuffer(self._memory.get_obj(), dtype=np.int32).reshape(self._n, self._length)

    def _decode(self, row: np.ndarray) -> str:
        end = np.flatnonzero(row >= self._pad)
        row = row[: end[0]] if end.size else row
        return "".join(self._chars[row])

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        rows = self._rows()
        if isinstance(index, slice):
            return tuple(self._decode(r) for r in rows[index])
        return self._decode(rows[index])

    def to_tuple(self) -> tuple[str, ...]:
        """The current strings as a tuple."""
        return tuple(self._decode(r) for r in self._rows())

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return self.to_tuple()

    def __copy__(self) -> tuple[str, ...]:
        return self.to_tuple()

    def __reduce__(self):
        return (tuple, (self.to_tuple(),))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (SharedTextView, tuple, list)):
            return self.to_tuple() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # the contents change

    def __repr__(self) -> str:
        return repr(self.to_tuple())


@read_from_shared_memory.register(PoserText)
def _read_poser_text(space: PoserText, shared_memory: Any, n: int = 1) -> SharedTextView:
    return SharedTextView(space, shared_memory, n)
