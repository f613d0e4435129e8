"""A small parser for Google-style docstrings (used to generate the command-line help).

Only the standard library is used so that building the CLI stays fast. The parser is lenient:
it accepts indented docstrings (as written in source) and flattened ones (every line at column
0), ``name (type): text`` and ``name: text`` entries, and multi-line descriptions. Continuation
lines of prose are joined into one paragraph; bullet lines (``- item``, ``* item``, ``1. item``)
and lines after a line ending in ``:`` keep their own line so that lists stay readable.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["ParsedDocstring", "parse_docstring", "parse_google_docstring"]

# Canonical section name for each recognised header (matched case-insensitively).
_SECTION_ALIASES = {
    "args": "Args",
    "arguments": "Args",
    "parameters": "Args",
    "params": "Args",
    "keyword args": "Args",
    "keyword arguments": "Args",
    "other parameters": "Args",
    "returns": "Returns",
    "return": "Returns",
    "yields": "Yields",
    "yield": "Yields",
    "raises": "Raises",
    "examples": "Examples",
    "example": "Examples",
    "notes": "Notes",
    "note": "Notes",
    "attributes": "Attributes",
    "warnings": "Warnings",
    "warning": "Warnings",
    "see also": "See Also",
    "references": "References",
    "todo": "Todo",
}

# "Args:" alone on a line, or "Returns: text" with inline text.
_HEADER_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<rest>.*)$")
_NAME_RE = re.compile(r"^(?P<name>\*{0,2}[A-Za-z_][A-Za-z0-9_]*)\s*")
_BULLET_RE = re.compile(r"^([-*+\u2022]\s|\d+[.)]\s)")

# Sections whose text is code or layout-sensitive: kept verbatim (dedented).
_VERBATIM_SECTIONS = {"Examples"}


@dataclass(frozen=True)
class ParsedDocstring:
    """Everything :func:`parse_docstring` extracts from a Google-style docstring.

    Attributes:
        summary: The first line.
        description: Text between the summary and the first section.
        params: Parameter name -> description (from Args/Arguments/Parameters sections).
        param_types: Parameter name -> type text written in ``name (type): ...`` (without
            ``, optional`` / ``, required``); only for parameters that declare one.
        returns: Text of the Returns (or, failing that, Yields) section.
        sections: Canonical section name -> raw dedented text, for every section found.
    """

    summary: str = ""
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    param_types: dict[str, str] = field(default_factory=dict)
    returns: str = ""
    sections: dict[str, str] = field(default_factory=dict)


def parse_google_docstring(doc: str | None) -> tuple[str, str, dict[str, str], str]:
    """Parses a Google-style docstring into its main parts.

    Args:
        doc: The docstring (``None`` or empty gives empty parts).

    Returns:
        tuple[str, str, dict[str, str], str]: ``(summary, description, params, returns_text)``
        where ``params`` maps each documented parameter name to its description.
    """
    parsed = parse_docstring(doc)
    return parsed.summary, parsed.description, dict(parsed.params), parsed.returns


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Parses a Google-style docstring, keeping parameter types and every section.

    Args:
        doc: The docstring (``None`` or empty gives an empty result).

    Returns:
        ParsedDocstring: The parts of the docstring.
    """
    if not doc or not doc.strip():
        return ParsedDocstring()
    lines = inspect.cleandoc(doc).splitlines()

    # Split into the preamble (summary + description) and sections.
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = preamble
    for line in lines:
        header = _section_header(line)
        if header is not None:
            name, inline = header
            current = sections.setdefault(name, [])
            if inline:
                current.append("    " + inline)
            continue
        current.append(line)

    while preamble and not preamble[0].strip():
        preamble.pop(0)
    summary = preamble[0].strip() if preamble else ""
    description = _join_prose([ln.strip() for ln in preamble[1:]])

    params: dict[str, str] = {}
    param_types: dict[str, str] = {}
    if "Args" in sections:
        params, param_types = _parse_entries(sections["Args"])

    section_text = {
        name: (_dedent(body) if name in _VERBATIM_SECTIONS else _join_prose(_stripped(body)))
        for name, body in sections.items()
    }
    returns = section_text.get("Returns") or section_text.get("Yields") or ""
    return ParsedDocstring(summary, description, params, param_types, returns, section_text)


def _section_header(line: str) -> tuple[str, str] | None:
    """Returns ``(canonical name, inline text)`` when ``line`` starts a section."""
    if line[:1].isspace():  # headers sit at the docstring's base indentation
        return None
    match = _HEADER_RE.match(line.rstrip())
    if not match:
        return None
    name = _SECTION_ALIASES.get(match["name"].strip().lower())
    if name is None:
        return None
    rest = match["rest"].strip()
    # Only Returns/Yields may carry text on the header line ("Returns: str: the path").
    if rest and name not in ("Returns", "Yields"):
        return None
    return name, rest


def _parse_entries(body: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Parses the lines of an Args section into name -> text and name -> type."""
    content = [ln for ln in body if ln.strip()]
    if not content:
        return {}, {}
    entry_indent = min(_indent(ln) for ln in content)
    texts: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    current: list[str] | None = None
    for line in body:
        if not line.strip():
            if current is not None:
                current.append("")
            continue
        entry = _parse_entry_line(line) if _indent(line) == entry_indent else None
        if entry is not None:
            name, type_text, text = entry
            name = name.lstrip("*")
            current = texts.setdefault(name, [])
            current.clear()
            if text:
                current.append(text)
            if type_text:
                types[name] = type_text
        elif current is not None:
            current.append(line.strip())
    params = {name: _join_prose(parts) for name, parts in texts.items()}
    return params, types


def _parse_entry_line(line: str) -> tuple[str, str, str] | None:
    """Splits ``name (type): text`` or ``name: text``; ``None`` if the line is not an entry."""
    stripped = line.strip()
    match = _NAME_RE.match(stripped)
    if not match:
        return None
    name = match["name"]
    rest = stripped[match.end() :]
    type_text = ""
    if rest.startswith("("):
        close = _matching_paren(rest)
        if close < 0:
            return None
        type_text = rest[1:close].strip()
        rest = rest[close + 1 :].lstrip()
    if not rest.startswith(":"):
        return None
    type_text = re.sub(r",\s*(optional|required)\s*$", "", type_text).strip()
    return name, type_text, rest[1:].strip()


def _matching_paren(text: str) -> int:
    """Index of the parenthesis closing ``text[0]`` (brackets nest), or -1."""
    depth = 0
    pairs = {"(": ")", "[": "]", "{": "}"}
    closers = set(pairs.values())
    for index, char in enumerate(text):
        if char in pairs:
            depth += 1
        elif char in closers:
            depth -= 1
            if depth == 0:
                return index if char == ")" else -1
    return -1


def _join_prose(lines: list[str]) -> str:
    """Joins stripped lines: prose continues a paragraph, bullets and blank lines break it."""
    out: list[str] = []
    for line in lines:
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        starts_new = (
            not out or out[-1] == "" or _BULLET_RE.match(line) is not None or out[-1].endswith(":")
        )
        if starts_new:
            out.append(line)
        else:
            out[-1] = f"{out[-1]} {line}"
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def _stripped(body: list[str]) -> list[str]:
    return [ln.strip() for ln in body]


def _dedent(body: list[str]) -> str:
    content = [ln for ln in body if ln.strip()]
    if not content:
        return ""
    cut = min(_indent(ln) for ln in content)
    text = "\n".join(ln[cut:].rstrip() for ln in body)
    return text.strip("\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
