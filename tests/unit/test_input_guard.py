"""The API's input guard, its pure checks (the ASGI behaviour is in
tests/integration/test_hostile_http.py)."""

from __future__ import annotations

import pytest

from api.input_guard import Refused, check_json_body, check_target


@pytest.mark.parametrize(("path", "query"), [
    (b"/api/v1/devices/a%00b", b""), (b"/api/v1/devices/%ff", b""),
    (b"/x", b"cursor=%00"), (b"/x", b"a%00=1"), (b"/x", b"q=%C3%28"), (b"/x", b"q=a+%00"),
])
def test_nul_and_bad_utf8_in_the_target_are_refused(path: bytes, query: bytes) -> None:
    with pytest.raises(Refused) as info:
        check_target(path, query)
    assert info.value.status == 422


def test_a_clean_target_passes() -> None:
    check_target(b"/api/v1/devices/truck%201", b"limit=10&cursor=abc%3D&q=%C3%A9")


@pytest.mark.parametrize(("body", "where"), [
    (b'{"a": ["x", "\\u0000"]}', "$.a[1]"), (b'{"a\\u0000": 1}', "key"),
    (b'{"a": {"b": "\\udc00"}}', "$.a.b"), (b'"\xc3\x28"', "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "deep"),
])
def test_bad_text_in_json_is_refused_with_where(body: bytes, where: str) -> None:
    with pytest.raises(Refused) as info:
        check_json_body(body)
    assert info.value.status == 422 and where in info.value.message


def test_escaped_backslash_u_is_text_not_nul_and_non_json_is_left_alone() -> None:
    check_json_body(b'{"a": "\\\\u0000", "b": "\\ud83d\\ude00"}')
    check_json_body(b"not json")
