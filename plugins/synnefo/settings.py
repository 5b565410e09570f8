"""Synnefo's settings files (/etc/synnefo/*.conf) edited in place (pure: text in, text out).

The files are Python, executed in order by every Synnefo process (shared research synnefo.md
§0, §6): a value written unquoted, as the runbook writes its URLs, makes every snf-manage call
fail. So values are written as Python literals (repr), the file is parsed before and after, and
an edit touches only the assignment it sets, keeping comments and the rest as they are:

- an existing top-level `NAME = ...` gets its value replaced in place (the expression's source
  span, which may run over several lines);
- a missing one is appended at the end, under a comment naming the change;
- `remove` comments out an assignment (the runbook's "remove the setting" keeps a trace);
- a setting already at its value is left alone, so a second edit changes nothing.

The values compared are the literals the file holds (ast.literal_eval); an expression that is
not a literal (`50*1024**3`) counts as different and is replaced when a value is set.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from airlift.errors import StepError

NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SettingsFileError(StepError, ValueError):
    """A settings file (or a value for one) that is not valid Python."""


@dataclass
class Edit:
    text: str                                              # the file after the edit
    changed: list[str] = field(default_factory=list)       # names set or removed
    secret: set[str] = field(default_factory=set)          # of those, the ones not to show


def parse(text: str, path: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise SettingsFileError(f"{path}, line {exc.lineno}: not valid Python ({exc.msg}): "
                                f"{(exc.text or '').strip()[:200]!r}. Synnefo reads it with execfile, so every "
                                "snf-manage command fails; fix it by hand first") from None


def assignments(tree: ast.Module) -> dict[str, ast.Assign]:
    """The last top-level `NAME = value` of each name (what the executed file ends with)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node
    return found


def current(text: str, path: str) -> dict:
    """{name: value} of the file's top-level assignments of literals or integer arithmetic
    (`50*1024**3`, as the settings templates write sizes); others are left out."""
    values = {}
    for name, node in assignments(parse(text, path)).items():
        try:
            values[name] = ast.literal_eval(node.value)
        except ValueError:
            number = _arithmetic(node.value)
            if number is not None:
                values[name] = number
    return values


_OPERATORS = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__, ast.FloorDiv: int.__floordiv__}


def _arithmetic(node: ast.AST) -> int | None:
    """The value of an integer expression of + - * // ** (small powers), else None: settings
    are read, never executed, here."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _arithmetic(node.operand)
        return None if value is None else -value
    if isinstance(node, ast.BinOp):
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Pow):
            return left ** right if 0 <= right <= 128 else None
        operator = _OPERATORS.get(type(node.op))
        if operator is None or (isinstance(node.op, ast.FloorDiv) and right == 0):
            return None
        return operator(left, right)
    return None


def literal(name: str, value) -> str:
    """The value as a Python literal that reads back equal, or SettingsFileError."""
    if not NAME.fullmatch(name):
        raise SettingsFileError(f"{name!r} is not a settings name (upper case, digits, underscores)")
    source = repr(value)
    try:
        if ast.literal_eval(source) != value:
            raise ValueError(source)
    except (ValueError, SyntaxError):
        raise SettingsFileError(f"{name}: {type(value).__name__} value has no Python literal; settings take "
                                "str, int, bool, None, and lists, tuples and dicts of them") from None
    return source


def edit(text: str, path: str, values: dict | None = None, remove: tuple[str, ...] = (),
         secret: tuple[str, ...] = ()) -> Edit:
    """The file with `values` set ({name: value}) and `remove` commented out."""
    values = values or {}
    tree = parse(text, path)
    found = assignments(tree)
    lines = text.splitlines(keepends=True)
    changed, appended = [], []
    # Replace from the end of the file up, so earlier spans keep their offsets.
    spans = []
    for name, value in values.items():
        source = literal(name, value)
        node = found.get(name)
        if node is None:
            appended.append(f"{name} = {source}\n")
            changed.append(name)
            continue
        try:
            same = ast.literal_eval(node.value) == value
        except ValueError:
            same = False
        if not same:
            spans.append((node.value.lineno, node.value.col_offset, node.value.end_lineno,
                          node.value.end_col_offset, source))
            changed.append(name)
    for name in remove:
        node = found.get(name)
        if node is not None:
            spans.append((node.lineno, 0, node.end_lineno, None, None))
            changed.append(name)
    for start, col, end, end_col, source in sorted(spans, reverse=True):
        if source is None:  # comment out the whole statement
            for number in range(start - 1, end):
                lines[number] = "#" + lines[number]
            continue
        first, last = lines[start - 1], lines[end - 1]
        lines[start - 1:end] = [_cut(first, 0, col) + source + _cut(last, end_col, None)]
    result = "".join(lines)
    if appended:
        if result and not result.endswith("\n"):
            result += "\n"
        result += "\n# Synnefo 0.13 upgrade (Airlift)\n" + "".join(appended)
    parse(result, path)  # never write a file Synnefo cannot read
    return Edit(result, changed, {n for n in changed if n in secret})


def _cut(line: str, start: int, end: int | None) -> str:
    """A slice of a source line by ast's offsets, which count UTF-8 bytes."""
    data = line.encode()
    return data[start:end].decode()


def shown(name: str, value, secret: tuple[str, ...] | set[str] = ()) -> str:
    """`NAME = value` as a plan line; a secret's value is masked."""
    return f"{name} = {'***' if name in secret else literal(name, value)}"
