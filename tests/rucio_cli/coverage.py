"""Which stock rucio-clients 41 commands run against our server, and in which test.

Every command in ``commands.json`` is in exactly one place:
- a test declares it with ``@pytest.mark.rucio_commands(...)`` and really runs it (the ``rucio``
  fixture checks, after each test, that the test ran exactly the commands it declares);
- ``not_applicable.txt``, with the reason;
- ``pending.txt``, commands not covered yet (this list only shrinks).

``python -m tests.rucio_cli.coverage`` rewrites the table kept in ``docs/rucio-compatibility.md``
between its ``<!-- stock commands -->`` markers.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MARKER = "rucio_commands"
#: The test modules that drive the stock CLIs.
SUITES = (ROOT / "tests" / "integration" / "api",)


def stock_commands() -> dict[str, list[str]]:
    """The commands of each stock CLI, as ``commands.json`` lists them."""
    commands: dict[str, list[str]] = json.loads((HERE / "commands.json").read_text())
    return commands


def all_commands() -> list[str]:
    return [command for commands in stock_commands().values() for command in commands]


def _new_style_groups() -> set[str]:
    return {command.split()[1] for command in stock_commands()["rucio"]}


def command_of(program: str, args: Iterable[str]) -> str | None:
    """The stock command that ``program args`` runs (None for ``--version`` and the like).

    The command is the longest run of leading words that names a command; option values
    come after the command words in every invocation the tests make.
    """
    args = list(args)
    words = [arg for arg in args if not arg.startswith("-")]
    if program == "rucio-admin":
        prefix = ["rucio-admin"]
    elif "--legacy" in args or (words and words[0] not in _new_style_groups()):
        prefix = ["rucio", "--legacy"]
    else:
        prefix = ["rucio"]
    known = set(all_commands())
    for length in range(len(words), 0, -1):
        candidate = " ".join([*prefix, *words[:length]])
        if candidate in known:
            return candidate
    return None


def is_legacy(command: str) -> bool:
    """Legacy commands (``rucio --legacy``, ``rucio-admin``) run in a test's legacy variant."""
    return command.startswith(("rucio --legacy ", "rucio-admin "))


def declared() -> dict[str, list[str]]:
    """command → the tests (``path::function``) that declare it."""
    modules = {
        path: ast.parse(path.read_text()) for suite in SUITES for path in sorted(suite.glob("test_*.py"))
    }
    shared = _constant_tuples(modules.values())
    found: dict[str, list[str]] = {}
    for path, module in modules.items():
        for function in module.body:
            if isinstance(function, ast.FunctionDef):
                test = f"{path.relative_to(ROOT)}::{function.name}"
                for command in _marked(function, shared):
                    found.setdefault(command, []).append(test)
    return found


def _constant_tuples(modules: Iterable[ast.Module]) -> dict[str, list[str]]:
    """Module-level ``NAME = ("...", ...)`` of the suites, which markers may splice in with ``*NAME``."""
    tuples = {}
    for module in modules:
        for node in module.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    tuples[target.id] = [
                        item.value for item in node.value.elts if isinstance(item, ast.Constant)
                    ]
    return tuples


def _marked(function: ast.FunctionDef, shared: dict[str, list[str]]) -> list[str]:
    commands: list[str] = []
    for decorator in function.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == MARKER
        ):
            for arg in decorator.args:
                if isinstance(arg, ast.Constant):
                    commands.append(arg.value)
                elif isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
                    commands += shared[arg.value.id]
    return commands


def _listed(name: str) -> dict[str, str]:
    """command → reason, from a ``command | reason`` file (``#`` starts a comment line)."""
    listed = {}
    for line in (HERE / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            command, _, reason = line.partition("|")
            listed[command.strip()] = reason.strip()
    return listed


def not_applicable() -> dict[str, str]:
    return _listed("not_applicable.txt")


def pending() -> dict[str, str]:
    return _listed("pending.txt")


def table() -> str:
    """The Markdown table of every command: status and the test, or the reason."""
    tests, skipped, waiting = declared(), not_applicable(), pending()
    lines = ["| command | status | test or reason |", "|---|---|---|"]
    for command in all_commands():
        if command in tests:
            row = ("runs", ", ".join(f"`{test.split('::')[1]}`" for test in tests[command]))
        elif command in skipped:
            row = ("not applicable", skipped[command])
        else:
            row = ("not covered yet", waiting.get(command, ""))
        lines.append(f"| `{command}` | {row[0]} | {row[1]} |")
    return "\n".join(lines)


BEGIN, END = "<!-- stock commands: begin -->", "<!-- stock commands: end -->"


def rewrite_doc(doc: Path = ROOT / "docs" / "rucio-compatibility.md") -> None:
    text = doc.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    rewrite_doc()
