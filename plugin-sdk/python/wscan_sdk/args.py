"""Typed plugin arguments: declared in `describe()`, checked by the host,
read from the options `scan` gets.

    def describe(self):
        return w.info(..., args=[
            w.args.integer("warn-days", "warn this many days before expiry", 1, 365, default=30),
            w.args.duration("wait", "how long to wait for a banner", 100, 10_000, default="2s"),
        ])

    async def scan(self, subject, options):
        days = options.integer("warn-days")      # 30 unless the user said
        wait_ms = options.duration_ms("wait")    # "2s" arrives as 2000

The host checks every `--plugin-arg` value against its declaration before
the scan starts, and hands the plugin the parsed value: a plugin never
parses argument text itself.
"""

from wit_world.imports.types import (
    ArgInfo,
    ArgKind_Boolean,
    ArgKind_Choice,
    ArgKind_ChoiceList,
    ArgKind_Duration,
    ArgKind_Integer,
    ArgKind_Text,
    ArgKind_TextList,
    ArgValue_Boolean,
    ArgValue_Choice,
    ArgValue_ChoiceList,
    ArgValue_Duration,
    ArgValue_Integer,
    ArgValue_Text,
    ArgValue_TextList,
    IntRange,
    MillisRange,
)

__all__ = ["Options", "boolean", "choice", "choice_list", "duration", "integer", "text", "text_list"]


def _default(value):
    """A default as a user would write it (`true`, `512`, `a,b`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def boolean(name, description, default=None) -> ArgInfo:
    """`true` or `false` (also `yes`/`no`, `on`/`off`, `1`/`0`)."""
    return ArgInfo(name, description, ArgKind_Boolean(), _default(default))


def integer(name, description, min, max, default=None) -> ArgInfo:
    """A whole number from `min` to `max`."""
    return ArgInfo(name, description, ArgKind_Integer(IntRange(min, max)), _default(default))


def duration(name, description, min_ms, max_ms, default=None) -> ArgInfo:
    """A duration with a unit (`250ms`, `2s`, `1m`), from `min_ms` to
    `max_ms` milliseconds; the plugin reads it in milliseconds. Give the
    default with its unit (`"2s"`); a bare number is milliseconds."""
    if isinstance(default, int) and not isinstance(default, bool):
        default = f"{default}ms"
    return ArgInfo(name, description, ArgKind_Duration(MillisRange(min_ms, max_ms)), _default(default))


def text(name, description, default=None) -> ArgInfo:
    """Any text, given as is."""
    return ArgInfo(name, description, ArgKind_Text(), _default(default))


def text_list(name, description, default=None) -> ArgInfo:
    """Comma-separated text items (`a,b,c`); empty items are dropped."""
    return ArgInfo(name, description, ArgKind_TextList(), _default(default))


def choice(name, description, choices, default=None) -> ArgInfo:
    """One of `choices` (matched without regard to case; the plugin gets
    the spelling declared here)."""
    return ArgInfo(name, description, ArgKind_Choice(list(choices)), _default(default))


def choice_list(name, description, choices, default=None) -> ArgInfo:
    """Comma-separated words, each one of `choices`."""
    return ArgInfo(name, description, ArgKind_ChoiceList(list(choices)), _default(default))


class Options:
    """The scan-wide settings `scan` gets: the user's ports, timeout, and
    this plugin's checked arguments.

    Reading an argument as another kind than its declaration is a bug in
    the plugin and raises `TypeError` (the subject's error record says so).
    """

    def __init__(self, raw):
        self.raw = raw
        #: The ports the user asked for (`-p`), as `(first, last)` pairs.
        self.ports = [(r.first, r.last) for r in raw.ports]
        #: The per-operation timeout the user asked for (`--timeout`).
        self.timeout_ms = raw.timeout_ms
        self._args = dict(raw.args)

    def port_list(self):
        """Every port the user asked for, one by one."""
        for first, last in self.ports:
            yield from range(first, last + 1)

    def value(self, name):
        """The argument's value of the bindings (`ArgValue_*`), or `None`
        when it has neither a user's value nor a default."""
        return self._args.get(name)

    def _read(self, name, kinds, asked):
        value = self._args.get(name)
        if value is None:
            return None
        if not isinstance(value, kinds):
            raise TypeError(f"argument {name!r} was read as a {asked}, but its declared kind gives {value!r}")
        return value.value

    def boolean(self, name):
        """A `boolean` argument: `True`, `False`, or `None` when unset."""
        return self._read(name, ArgValue_Boolean, "boolean")

    def integer(self, name):
        """An `integer` argument, within its declared range."""
        return self._read(name, ArgValue_Integer, "integer")

    def duration_ms(self, name):
        """A `duration` argument, in milliseconds."""
        return self._read(name, ArgValue_Duration, "duration")

    def text(self, name):
        """A `text` or `choice` argument."""
        return self._read(name, (ArgValue_Text, ArgValue_Choice), "text or choice")

    def list(self, name):
        """A `text_list` or `choice_list` argument; `[]` when unset."""
        return self._read(name, (ArgValue_TextList, ArgValue_ChoiceList), "list") or []
