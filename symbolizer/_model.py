"""The frame data model shared by the tracer, the symbolizer and the collector.

Small frozen records with slots, every field optional where debug info can be partial (structlog's tracebacks
module). A symbolized frame is a tuple of symbols, innermost inlined call first, the physical function last
(gimli's addr2line model). Renderers live in ``_render.py``; nothing here formats text.

The records are written by hand rather than with ``@dataclass(frozen=True, slots=True)``: importing
``dataclasses`` (and ``inspect`` with it) and generating the methods costs ~10 ms per process, half of what a
warm ``tracer symbolize`` may spend beyond the interpreter's own start to keep up with llvm-symbolizer. They behave like those dataclasses: positional or keyword construction, value
equality and hashing over the fields in order, a ``Name(field=value, ...)`` repr, ``__match_args__``, and
assignment or deletion raising :class:`FrozenInstanceError` (an ``AttributeError``, like
``dataclasses.FrozenInstanceError``). They are not dataclasses: ``dataclasses.replace``, ``fields`` and
``asdict`` do not apply to them (``asdict`` of a record that holds them copies them as they are).
"""

from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = ["FrozenInstanceError", "FrozenRecord", "RawFrame", "SourceLocation", "Symbol", "SymbolizedFrame"]


class FrozenInstanceError(AttributeError):
    """Assigning to or deleting a field of a frozen record."""


class FrozenRecord:
    """Base of the records (here and in ``_traces.py``): a subclass's ``__slots__`` name its fields, in order,
    and its ``__init__`` sets them with ``object.__setattr__``; equality, hashing, repr and pickling follow."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]]  # the subclass's __slots__: its fields, in order
    # ``_values(record)``: its fields in order, as a tuple (an attrgetter, not a method: no binding)
    _values: ClassVar[attrgetter[tuple[Any, ...]]]

    def __init_subclass__(cls) -> None:
        if "__slots__" not in cls.__dict__:
            return  # a subclass that adds no fields keeps its base's
        fields: tuple[str, ...] = cls.__dict__["__slots__"]
        cls._fields = fields
        cls._values = attrgetter(fields[0], *fields[1:])  # several fields: it returns a tuple

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values(self) == self._values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # pickle and copy rebuild through the constructor (the default would assign slots, which we refuse)
        return (type(self), self._values(self))


_set = object.__setattr__


class RawFrame(FrozenRecord):
    """One wasm frame as the engine reports it: offsets only, names from the name section at best.

    ``module_offset`` counts from the start of the module file (what V8 and wasmtime print);
    ``func_offset`` from the start of the function body.
    """

    __slots__ = ("func_index", "func_name", "module_offset", "func_offset")
    __match_args__ = ("func_index", "func_name", "module_offset", "func_offset")

    func_index: int | None
    func_name: str | None
    module_offset: int | None
    func_offset: int | None

    def __init__(
        self, func_index: int | None, func_name: str | None, module_offset: int | None, func_offset: int | None
    ) -> None:
        _set(self, "func_index", func_index)
        _set(self, "func_name", func_name)
        _set(self, "module_offset", module_offset)
        _set(self, "func_offset", func_offset)


class SourceLocation(FrozenRecord):
    """A position in source as the compiler recorded it; any part may be unknown."""

    __slots__ = ("file", "line", "column")
    __match_args__ = ("file", "line", "column")

    file: str | None
    line: int | None
    column: int | None

    def __init__(self, file: str | None, line: int | None, column: int | None) -> None:
        _set(self, "file", file)
        _set(self, "line", line)
        _set(self, "column", column)


class Symbol(FrozenRecord):
    """One function at one address: readable name, the mangled name kept alongside, where it is."""

    __slots__ = ("function", "mangled", "location", "inlined")
    __match_args__ = ("function", "mangled", "location", "inlined")

    function: str
    mangled: str | None
    location: SourceLocation | None
    inlined: bool

    def __init__(self, function: str, mangled: str | None, location: SourceLocation | None, inlined: bool) -> None:
        _set(self, "function", function)
        _set(self, "mangled", mangled)
        _set(self, "location", location)
        _set(self, "inlined", inlined)


class SymbolizedFrame(FrozenRecord):
    """One wasm frame: its module offset and the inline chain at it, innermost first."""

    __slots__ = ("address", "func_index", "symbols")
    __match_args__ = ("address", "func_index", "symbols")

    address: int
    func_index: int | None
    symbols: tuple[Symbol, ...]

    def __init__(self, address: int, func_index: int | None, symbols: tuple[Symbol, ...]) -> None:
        _set(self, "address", address)
        _set(self, "func_index", func_index)
        _set(self, "symbols", symbols)
