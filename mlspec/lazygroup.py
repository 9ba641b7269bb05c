"""The `mlspec` click group, with each command built only when it is looked up.

Typer builds the click command of every registered function before it parses anything
(parameters, help, types), although one command runs. `lazy_group(app)` builds the group with
its own options only and gives it a `LazyCommands` mapping: a command is built from its
`@app.command()` registration when click looks it up, i.e. the invoked one, or all of them for
`mlspec --help`. Names, order, help text and error messages are typer's own. Adding a command
stays one `@app.command()` function in cli.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping

import typer
import typer.main
from typer import _click as click
from typer.core import TyperArgument, TyperGroup
from typer.main import get_command_from_info, get_command_name
from typer.models import CommandInfo


def _no_type_labels(command: object) -> None:
    """Typer labels every argument with its Python type (`STEP <list[str]>`); the metavar
    says it all, so the label goes (issue 12.7)."""
    for param in getattr(command, "params", []):
        if isinstance(param, TyperArgument):
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands, each built from its `@app.command()` function when first asked
    for (and kept); iteration gives every registered name in registration order."""

    def __init__(self, app: typer.Typer, infos: list[CommandInfo]) -> None:
        self.app = app
        self.infos = {info.name or get_command_name(info.callback.__name__): info
                      for info in infos if info.callback is not None}
        self.built: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.built:
            command = get_command_from_info(
                self.infos[name], pretty_exceptions_short=self.app.pretty_exceptions_short,
                rich_markup_mode=self.app.rich_markup_mode)
            _no_type_labels(command)
            self.built[name] = command
        return self.built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.built[name] = command
        self.infos.setdefault(name, CommandInfo(name=name, callback=command.callback))

    def __delitem__(self, name: str) -> None:
        del self.infos[name]
        self.built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.infos)

    def __len__(self) -> int:
        return len(self.infos)


def lazy_group(app: typer.Typer) -> TyperGroup:
    """The app's click group: its own options now, each command when it is looked up."""
    bare = copy.copy(app)
    bare.registered_commands = []  # the group alone; the commands come from LazyCommands
    group = typer.main.get_command(bare)
    assert isinstance(group, TyperGroup)
    group.commands = LazyCommands(app, app.registered_commands)
    return group
