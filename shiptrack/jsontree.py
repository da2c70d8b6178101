"""Bounds on decoded JSON values, checked without recursion (pure functions).

A JSON parser hands back any tree: nesting as deep as the bytes allow, integers of any
size, strings with NUL. What shiptrack keeps must fit where it goes: PostgreSQL's
``jsonb`` and ``text`` refuse ``\\u0000``, a ``float8`` column refuses an integer past
1.8e308, an ``int8`` one past 2**63. These helpers say whether a value fits, walking
with an explicit stack so that no input can exhaust Python's.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32  # containers inside containers; a message's top level counts as 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when decoded JSON ``value`` nests lists/objects more than ``limit`` deep
    (level by level: the containers of one depth, then those inside them)."""
    level: list[Any] = [value] if type(value) in (dict, list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        inner: list[Any] = []
        for node in level:
            for child in (node.values() if type(node) is dict else node):
                kind = type(child)
                if kind is dict or kind is list:  # what a JSON decoder makes
                    inner.append(child)
        level, depth = inner, depth + 1
    return False


def has_nul(value: Any) -> bool:
    """True when a string (or an object key) anywhere in ``value`` holds U+0000, which
    PostgreSQL cannot store in ``text`` or ``jsonb``."""
    kind = type(value)
    if kind is str:
        return "\x00" in value
    if kind is not dict and kind is not list:
        return False
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            if any("\x00" in k for k in node if isinstance(k, str)):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def is_number(value: Any) -> bool:
    """A JSON number (``true``/``false`` are not)."""
    kind = type(value)
    return kind is float or kind is int or (
        isinstance(value, int | float) and not isinstance(value, bool))


def as_float(value: int | float) -> float:
    """A JSON number as a float; an integer too large for one becomes ±inf (so that a
    range check refuses it) instead of raising ``OverflowError``."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def fits_int8(value: int) -> bool:
    return INT8_MIN <= value <= INT8_MAX


def short(value: Any, limit: int = 40) -> str:
    """A value for an error message: its repr, cut, with no NUL (a 400-digit number or a
    megabyte string never ends up whole in a log line or a dead letter)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit] + "..."
    text = repr(value) if isinstance(value, str | int | float | bool) or value is None \
        else type(value).__name__
    return text.replace("\x00", "\\x00")[: limit + 10]


def text_problem(text: str) -> str | None:
    """What makes a string unfit for storage and for UTF-8: a NUL or a lone surrogate."""
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid Unicode (a lone surrogate)"
    return None


Path = tuple[Any, ...] | None  # (parent path, key or index): built only when reported


def _path_text(path: Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, step = path
        parts.append(f"[{step}]" if isinstance(step, int) else f".{short(step, 30)[1:-1]}")
    return "$" + "".join(reversed(parts))


def find_bad_text(value: Any) -> tuple[str, str] | None:
    """The first string or key in ``value`` with a ``text_problem``: (where, what), where
    is a JSON path like ``$.items[2].name``."""
    stack: list[tuple[Any, Path]] = [(value, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem is not None:
                return _path_text(path), problem
        elif isinstance(node, dict):
            for key, child in node.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    return _path_text((path, key)), f"{problem} in a key"
                if isinstance(child, str | dict | list):
                    stack.append((child, (path, key)))
        elif isinstance(node, list):
            stack.extend((child, (path, i)) for i, child in enumerate(node)
                         if isinstance(child, str | dict | list))
    return None
