"""Command-line interface: one sub-command per public function, generated from its signature.

``spectralmatch COMMAND [ARGS] [--OPTIONS]`` calls ``spectralmatch.COMMAND``:

* parameters without a default are positionals (in signature order) and are also accepted as
  ``--name``; a positional given as an option is not expected positionally;
* parameters with a default are options, spelled ``--snake_case`` or ``--kebab-case``;
* boolean parameters: ``--flag`` alone means True, ``--flag True`` / ``--flag False`` also work;
* values are parsed as Python literals with :func:`ast.literal_eval` (tuples, lists, dicts,
  ``None``, numbers, booleans); text that is not a literal stays a plain string, so paths and
  names need no quoting. Parameters annotated exactly ``str`` always receive the plain text;
* help comes from the Google-style docstrings (summary, Args, Returns).

Exit codes: 0 success, 1 runtime error (one line on stderr; the traceback is shown when the
environment variable ``SPECTRALMATCH_DEBUG`` is ``1``), 2 usage error, 130 interrupted.

The module imports only the standard library so that ``--help`` and ``--version`` start fast;
the numeric stack is imported when a command actually runs.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import logging
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spectralmatch._docstrings import parse_docstring

__all__ = ["build_parser", "main", "parse_value"]

PROG = "spectralmatch"
_DEBUG_ENV = "SPECTRALMATCH_DEBUG"
_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}
_FLOAT_WORDS = {
    "nan": float("nan"),
    "+nan": float("nan"),
    "-nan": float("nan"),
    "inf": float("inf"),
    "+inf": float("inf"),
    "-inf": float("-inf"),
    "infinity": float("inf"),
    "+infinity": float("inf"),
    "-infinity": float("-inf"),
}
_SPEC_DEST = "_spectralmatch_command"
_OPT_PREFIX = "_opt__"  # namespace key of the option form of a positional parameter

_VALUE_HELP = (
    'Values are parsed as Python literals: ("process", 4), ["a.tif", "b.tif"], None, 3, '
    "0.5, True. Anything else (paths, globs like /data/*.tif, names like float32) is passed as "
    "text. Quote values containing spaces or shell characters."
)


# --------------------------------------------------------------------------- value parsing


def parse_value(text: str) -> Any:
    """Parses a command-line value as a Python literal, falling back to the text itself.

    Uses :func:`ast.literal_eval` (never ``eval``): ``"('process', 4)"`` gives a tuple,
    ``"[1, 2]"`` a list, ``"None"`` None, ``"3"`` an int, ``"True"`` a bool, while text that is
    not a literal (``"/x/*.tif"``, ``"float32"``, ``"b1 > 0"``) is returned unchanged.

    Args:
        text: The raw command-line token.

    Returns:
        Any: The literal value, or ``text`` when it is not a Python literal.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def _is_bool_word(text: str) -> bool:
    return text.strip().lower() in _TRUE_WORDS | _FALSE_WORDS


# --------------------------------------------------------------------------- parameter specs


@dataclass
class _ParamSpec:
    name: str
    required: bool
    default: Any
    type_text: str
    doc: str
    is_bool: bool
    convert: Callable[[str], Any]

    @property
    def option_strings(self) -> list[str]:
        names = [f"--{self.name}"]
        kebab = self.name.replace("_", "-")
        if kebab != self.name:
            names.append(f"--{kebab}")
        return names


@dataclass
class _CommandSpec:
    name: str
    func: Callable[..., Any]
    params: list[_ParamSpec]
    parser: argparse.ArgumentParser | None = None
    option_lookup: dict[str, _ParamSpec] = field(default_factory=dict)

    @property
    def required(self) -> list[_ParamSpec]:
        return [p for p in self.params if p.required]


def _render_annotation(annotation: Any) -> str:
    """Readable text for a type annotation (strings from postponed evaluation are kept)."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        text = annotation
    elif annotation is None or annotation is type(None):
        text = "None"
    elif isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        text = annotation.__qualname__
    else:
        text = repr(annotation)
    return re.sub(r"\b(typing|collections\.abc|builtins|pathlib)\.", "", text)


def _make_converter(type_text: str) -> Callable[[str], Any]:
    """Converter from text to value, guided by the (rendered) annotation."""
    if type_text == "str":
        return str
    wants_float = not type_text or "float" in type_text

    def convert(text: str) -> Any:
        if wants_float and text.strip().lower() in _FLOAT_WORDS:
            return _FLOAT_WORDS[text.strip().lower()]
        return parse_value(text)

    return convert


def _is_callback(name: str, type_text: str) -> bool:
    return name == "progress" or "Callable" in type_text or "ProgressCallback" in type_text


def _command_spec(name: str, func: Callable[..., Any]) -> _CommandSpec:
    signature = inspect.signature(func)
    doc = parse_docstring(inspect.getdoc(func))
    params = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue  # *args / **kwargs cannot be described on a command line
        type_text = _render_annotation(param.annotation) or doc.param_types.get(param.name, "")
        if _is_callback(param.name, type_text):
            continue  # callbacks (e.g. progress=) are for programs; the CLI shows its own bar
        required = param.default is inspect.Parameter.empty
        is_bool = type_text == "bool" or (not type_text and isinstance(param.default, bool))
        params.append(
            _ParamSpec(
                name=param.name,
                required=required,
                default=param.default,
                type_text=type_text,
                doc=doc.params.get(param.name, ""),
                is_bool=is_bool,
                convert=_parse_bool if is_bool else _make_converter(type_text),
            )
        )
    return _CommandSpec(name=name, func=func, params=params)


# --------------------------------------------------------------------------- help formatting


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps each line on its own (keeps docstring bullets/paragraphs) and lists aliases once."""

    def __init__(self, prog: str, max_help_position: int = 32, **kwargs: Any) -> None:
        super().__init__(prog, max_help_position=max_help_position, **kwargs)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures sub-commands without their extra indentation, which pushes every
        # command's summary onto the next line; count it.
        if action.help is not argparse.SUPPRESS and hasattr(action, "_get_subactions"):
            lengths = [len(self._format_action_invocation(a)) for a in action._get_subactions()]
            indent = self._current_indent + self._indent_increment
            self._action_max_length = max(self._action_max_length, max(lengths, default=0) + indent)

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        for line in text.splitlines():
            if not line.strip():
                lines.append("")
                continue
            body = line.lstrip()
            indent = " " * (len(line) - len(body))
            bullet = re.match(r"([-*+\u2022]|\d+[.)])\s+", body)
            hang = indent + " " * (bullet.end() if bullet else 0)
            lines.extend(
                textwrap.wrap(body, width, initial_indent=indent, subsequent_indent=hang) or [""]
            )
        return lines

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line if line else "" for line in self._split_lines(text, width - len(indent))
        )

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        default = self._get_default_metavar_for_optional(action)
        args_string = self._format_args(action, default)
        return f"{', '.join(action.option_strings)} {args_string}"


def _escape(text: str) -> str:
    """Escapes ``%`` for argparse, which %-formats help strings."""
    return text.replace("%", "%%")


def _param_help(param: _ParamSpec) -> str:
    parts = []
    if param.type_text:
        parts.append(f"type: {param.type_text}")
    if param.required:
        parts.append("required; also accepted as " + " / ".join(param.option_strings))
    else:
        parts.append(f"default: {param.default!r}")
    details = "; ".join(parts)
    text = f"{param.doc}\n[{details}]" if param.doc else f"[{details}]"
    return _escape(text)


def _command_epilog(func: Callable[..., Any]) -> str:
    doc = parse_docstring(inspect.getdoc(func))
    blocks = []
    if doc.returns:
        blocks.append("Returns:\n" + textwrap.indent(doc.returns, "  "))
    for section in ("Raises", "Notes", "Examples"):
        if doc.sections.get(section):
            blocks.append(f"{section}:\n" + textwrap.indent(doc.sections[section], "  "))
    blocks.append(_VALUE_HELP)
    return "\n\n".join(blocks)


def _add_command(
    subparsers: argparse._SubParsersAction, spec: _CommandSpec
) -> argparse.ArgumentParser:
    doc = parse_docstring(inspect.getdoc(spec.func))
    description = "\n\n".join(part for part in (doc.summary, doc.description) if part)
    usage_positionals = " ".join(p.name for p in spec.required)
    parser = subparsers.add_parser(
        spec.name,
        help=_escape(doc.summary) or None,
        description=description or None,
        epilog=_command_epilog(spec.func),
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    parser.usage = f"{parser.prog} [options] {usage_positionals}".rstrip()

    for param in spec.required:
        # nargs="?" so that a parameter given as --name is not also expected positionally;
        # presence is checked in _collect_kwargs (usage error when missing).
        parser.add_argument(
            param.name,
            nargs="?",
            default=None,
            metavar=param.name,
            help=_param_help(param),
        )
    for param in spec.params:
        dest = _OPT_PREFIX + param.name if param.required else param.name
        kwargs: dict[str, Any] = {
            "dest": dest,
            "default": argparse.SUPPRESS,  # absent options keep the function's default
            "type": param.convert,
            "help": argparse.SUPPRESS if param.required else _param_help(param),
        }
        if param.is_bool and not param.required:
            kwargs.update(nargs="?", const=True, metavar="BOOL")
        else:
            kwargs.update(metavar="VALUE")
        parser.add_argument(*param.option_strings, **kwargs)
        for option in param.option_strings:
            spec.option_lookup[option] = param
    parser.set_defaults(**{_SPEC_DEST: spec})
    spec.parser = parser
    return parser


def _default_functions() -> dict[str, Callable[..., Any]]:
    import spectralmatch

    return dict(spectralmatch.public_functions())


def build_parser(
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> argparse.ArgumentParser:
    """Builds the ``spectralmatch`` argument parser with one sub-command per function.

    Args:
        functions: Command name -> function, in display order. ``None`` uses
            ``spectralmatch.public_functions()``.

    Returns:
        argparse.ArgumentParser: The top-level parser. Each sub-parser stores its command
        specification under a private namespace key used by :func:`main`.
    """
    import spectralmatch

    if functions is None:
        functions = _default_functions()
    help_position = min(max((len(name) for name in functions), default=0) + 8, 44)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_escape(inspect.getdoc(spectralmatch) or ""),
        epilog=f"Run '{PROG} COMMAND --help' for the parameters of a command. " + _VALUE_HELP,
        # Command names are long: give the listing a wider first column.
        formatter_class=functools.partial(_HelpFormatter, max_help_position=help_position),
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {spectralmatch.__version__}"
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    for name, func in functions.items():
        _add_command(subparsers, _command_spec(name, func))
    return parser


# --------------------------------------------------------------------------- parsing


def _normalise_argv(spec: _CommandSpec, argv: list[str]) -> list[str]:
    """Rewrites option tokens so argparse cannot misread them.

    * ``--flag`` followed by something other than a boolean word becomes ``--flag=True``
      (otherwise an optional-value flag would swallow the next positional);
    * ``--name -5e3`` becomes ``--name=-5e3`` (argparse would take ``-5e3`` for an option).
    """
    out: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if token == "--":
            out.append(token)
            out.extend(argv[index:])
            break
        param = spec.option_lookup.get(token)
        if param is None:
            out.append(token)
            continue
        following = argv[index] if index < len(argv) else None
        if param.is_bool and not param.required:
            if following is not None and _is_bool_word(following):
                out.append(f"{token}={following}")
                index += 1
            else:
                out.append(f"{token}=True")
        elif (
            following is not None
            and following.startswith("-")
            and following != "--"
            and following.split("=", 1)[0] not in spec.option_lookup
            and following not in ("-h", "--help")
        ):
            out.append(f"{token}={following}")
            index += 1
        else:
            out.append(token)
    return out


def _collect_kwargs(spec: _CommandSpec, namespace: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for the call; usage error (exit 2) when a required one is missing."""
    assert spec.parser is not None
    values = vars(namespace)
    kwargs: dict[str, Any] = {}
    given_as_option = set()
    for param in spec.required:
        key = _OPT_PREFIX + param.name
        if key in values:
            kwargs[param.name] = values[key]
            given_as_option.add(param.name)
    # argparse fills the nargs="?" slots in order, so the given positionals form a prefix.
    positional_values = [values.get(p.name) for p in spec.required]
    positional_values = [v for v in positional_values if v is not None]
    slots = [p for p in spec.required if p.name not in given_as_option]
    if len(positional_values) > len(slots):
        extra = positional_values[len(slots) :]
        spec.parser.error("unrecognized arguments: " + " ".join(extra))
    for param, text in zip(slots, positional_values, strict=False):  # slots may outnumber
        try:
            kwargs[param.name] = param.convert(text)
        except argparse.ArgumentTypeError as exc:
            spec.parser.error(f"argument {param.name}: {exc}")
    missing = [p.name for p in slots[len(positional_values) :]]
    if missing:
        spec.parser.error("the following arguments are required: " + ", ".join(missing))
    for param in spec.params:
        if not param.required and param.name in values:
            kwargs[param.name] = values[param.name]
    return kwargs


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[_CommandSpec, dict[str, Any]]:
    """Parses ``argv``; exits through argparse (SystemExit) on help, version or usage errors."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = argv[0] if argv else None
    sub = subparsers.choices.get(command) if command else None
    if sub is not None:
        spec: _CommandSpec = sub.get_default(_SPEC_DEST)
        # Intermixed parsing lets positionals and options come in any order.
        namespace = sub.parse_intermixed_args(_normalise_argv(spec, argv[1:]))
    else:
        namespace = parser.parse_args(argv)
        spec = getattr(namespace, _SPEC_DEST)
    return spec, _collect_kwargs(spec, namespace)


# --------------------------------------------------------------------------- running


def _print_result(result: Any) -> None:
    if result is None:
        return
    if isinstance(result, (list, tuple, set, frozenset)):
        for item in result:
            print(item)
    elif isinstance(result, Mapping):
        for key, value in result.items():
            print(f"{key}: {value}")
    else:
        print(result)


def _debug_enabled() -> bool:
    return os.environ.get(_DEBUG_ENV, "").strip().lower() in _TRUE_WORDS


class _LogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno == logging.INFO:
            return message
        return f"{record.levelname}: {message}"


def _attach_log_handler() -> tuple[logging.Handler, int] | None:
    """Shows the library's INFO messages on stderr unless logging is already configured.

    Returns the handler and the logger's previous level so that :func:`main` can undo it.
    """
    logger = logging.getLogger(PROG)
    if logger.handlers:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    previous_level = logger.level
    logger.addHandler(handler)
    if previous_level == logging.NOTSET:
        logger.setLevel(logging.DEBUG if _debug_enabled() else logging.INFO)
    return handler, previous_level


def _detach_log_handler(attached: tuple[logging.Handler, int] | None) -> None:
    if attached is not None:
        logger = logging.getLogger(PROG)
        logger.removeHandler(attached[0])
        logger.setLevel(attached[1])


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    from spectralmatch.errors import SpectralMatchError

    if isinstance(exc, SpectralMatchError) and message:
        return message
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main(
    argv: Sequence[str] | None = None,
    *,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> int:
    """Runs the command line.

    Args:
        argv: Arguments without the program name; ``None`` uses ``sys.argv[1:]``.
        functions: Command name -> function; ``None`` uses ``spectralmatch.public_functions()``.

    Returns:
        int: The exit code: 0 success, 1 runtime error, 2 usage error, 130 interrupted.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["--version"]:  # answered without importing the commands
            import spectralmatch

            print(f"{PROG} {spectralmatch.__version__}")
            return 0
        try:
            parser = build_parser(functions)
            spec, kwargs = _parse(parser, args)
        except SystemExit as exc:  # argparse: help, version, usage errors
            return _exit_code(exc)
        attached = _attach_log_handler()
        try:
            _print_result(spec.func(**kwargs))
        finally:
            _detach_log_handler(attached)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _debug_enabled():
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
