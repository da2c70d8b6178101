"""A CLI flag for every setting, generated from the ``Settings`` fields themselves.

``settings_options()`` wraps a command whose first parameter is ``settings: Settings``:
the wrapper's signature (what typer reads) is the command's own parameters followed by
one ``--field-name`` option per ``Settings`` field (``http_host`` also ``--host``,
``http_port`` also ``--port``). A flag given overrides the environment; a bad value is a
one-line error and exit status 2, before anything starts. A setting added to
``Settings`` gets its flag everywhere without touching this file.
"""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from shiptrack.config import Settings
from shiptrack.errors import ConfigError

ALIASES = {"http_host": ("--host",), "http_port": ("--port",)}
SECRET_FIELDS = frozenset(n for n in Settings.model_fields
                           if n in ("admin_token", "tracking_key") or "secret" in n)
_SCALARS = (bool, int, float, str)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return "SHIPTRACK_" + name.upper()


def is_json(info: FieldInfo) -> bool:
    """A structured setting (a dict or list): given as JSON text, like its variable."""
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return typing.get_origin(annotation) in (dict, list) or annotation in (dict, list)


def _cli_type(info: FieldInfo) -> tuple[type, str]:
    """The type typer parses the flag as, and a hint of the accepted values."""
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is Literal:
        return str, " (one of: " + ", ".join(str(a) for a in typing.get_args(annotation)) + ")"
    if annotation in _SCALARS:
        return annotation, ""  # type: ignore[return-value]
    return str, ""


def _option(name: str, info: FieldInfo) -> inspect.Parameter:
    kind, hint = _cli_type(info)
    value = info.get_default(call_default_factory=True)
    default = "" if name in SECRET_FIELDS or value in (None, {}, []) else f" (default: {value})"
    help_text = f"{info.description or name.replace('_', ' ')}{hint}; overrides " \
                f"{env_name(name)}{default}"
    decls = (flag(name), *ALIASES.get(name, ()))
    if kind is bool:
        decls = (f"{flag(name)}/--no-{name.replace('_', '-')}",)
    option = typer.Option(*decls, help=help_text, show_default=False,
                          rich_help_panel="Settings")
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind | None, option])


def build_settings(overrides: dict[str, Any]) -> Settings:
    """Settings from the environment with the flags given; ConfigError (one line) if bad."""
    values = {k: v for k, v in overrides.items() if v is not None}
    for name, value in values.items():
        if isinstance(value, str) and is_json(Settings.model_fields[name]):
            try:
                values[name] = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"bad setting {flag(name)} / {env_name(name)}: not JSON "
                                  f"({exc})") from exc
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(f"bad setting {flag(name)} / {env_name(name)}: {err['msg']}") from exc


def settings_options(
    fields: Iterable[str] | None = None,
    on_error: Callable[[ConfigError], BaseException] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one flag per setting (all, or ``fields``)."""
    chosen = list(Settings.model_fields) if fields is None else list(fields)

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
        taken = {p.name for p in own}
        names = [n for n in chosen if n not in taken]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            overrides = {n: kwargs.pop(n, None) for n in names}
            try:
                settings = build_settings(overrides)
            except ConfigError as exc:
                if on_error is None:
                    raise
                raise on_error(exc) from exc
            command(settings, **kwargs)

        params = [*own, *(_option(n, Settings.model_fields[n]) for n in names)]
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {}
        del wrapper.__wrapped__  # typer must read the signature above, not the command's
        return wrapper

    return decorate
