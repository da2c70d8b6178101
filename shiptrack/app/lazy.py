"""Commands whose module is imported only when the command runs.

``shiptrack --help`` lists a lazy command by the help text given here; ``shiptrack
simulate ...`` (its run or its ``--help``) imports the command's module and hands the
arguments to the real typer command. So ``import shiptrack.app.cli`` loads no service.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


class LazyCommand(TyperCommand):
    """A stand-in for the typer command ``target`` (``"module:function"``)."""

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name, help=help)
        self.target = target

    # Any: the context class is typer's vendored click's, which typer does not export
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        module, attr = self.target.split(":")
        function = getattr(importlib.import_module(module), attr)
        single = typer.Typer(add_completion=False)
        single.command(self.name, help=self.help)(function)
        # the context (and so the parsing, --help and the run) is the real command's
        return typer.main.get_command(single).make_context(info_name, args, parent=parent,
                                                           **extra)


def lazy_group(*commands: LazyCommand) -> type[TyperGroup]:
    """A ``typer.Typer(cls=...)`` group holding ``commands`` beside the typer ones."""

    class Group(TyperGroup):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            for command in commands:
                self.add_command(command)

    return Group
