"""Pure-Python Rust v0 demangling (RFC 2603), the fallback when the ``pyderust`` wheel cannot be imported.

A port of the printer of ``rustc-demangle``'s ``v0.rs``, alternate form (``{:#}``: no crate disambiguators),
covering what rustc emits for functions: paths, impls, generic arguments, closures and shims, basic, reference,
pointer, array, slice, tuple, fn and ``dyn`` types, lifetimes and integer/bool/char constants. Anything else
(punycode identifiers, structural constants) makes it give up (``None``), and the caller keeps the mangled name:
the fallback is allowed to say less, never something different. Every recursion and backreference is bounded.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["demangle_v0"]

_Printable = Callable[[], None]

_BASIC = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8", "i": "isize",
    "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16", "t": "u16", "u": "()",
    "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
}
_MAX_DEPTH = 300
_MAX_OUT = 1 << 16
_B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Invalid(Exception):
    pass


class _Printer:
    def __init__(self, sym: str) -> None:
        self.sym = sym
        self.pos = 0
        self.out: list[str] = []
        self.size = 0
        self.depth = 0
        self.bound_lifetimes = 0

    # -- output -------------------------------------------------------------------------------------
    def w(self, s: str) -> None:
        self.size += len(s)
        if self.size > _MAX_OUT:
            raise _Invalid("output too long")
        self.out.append(s)

    # -- lexing -------------------------------------------------------------------------------------
    def peek(self) -> str:
        return self.sym[self.pos] if self.pos < len(self.sym) else ""

    def eat(self, c: str) -> bool:
        if self.peek() == c:
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if self.pos >= len(self.sym):
            raise _Invalid("unexpected end")
        c = self.sym[self.pos]
        self.pos += 1
        return c

    def base62(self) -> int:
        if self.eat("_"):
            return 0
        x = 0
        while True:
            c = self.next()
            if c == "_":
                return x + 1
            d = _B62.find(c)
            if d < 0:
                raise _Invalid("bad base-62 digit")
            x = x * 62 + d
            if x > 1 << 64:
                raise _Invalid("number too large")

    def opt_integer62(self, tag: str) -> int:
        return self.base62() + 1 if self.eat(tag) else 0

    def disambiguator(self) -> int:
        return self.opt_integer62("s")

    def decimal(self) -> int:
        # <decimal-number> = "0" | <[1-9]> {<[0-9]>}: a leading "0" is the whole number ("00" is two zeros).
        if self.eat("0"):
            return 0
        start = self.pos
        while self.peek().isdigit():
            self.pos += 1
        digits = self.sym[start : self.pos]
        if not digits or len(digits) > 9:
            raise _Invalid("bad decimal")
        return int(digits)

    def ident(self) -> str:
        if self.eat("u"):
            raise _Invalid("punycode identifiers are not handled by the fallback")
        n = self.decimal()
        self.eat("_")
        if self.pos + n > len(self.sym):
            raise _Invalid("identifier past the end")
        s = self.sym[self.pos : self.pos + n]
        self.pos += n
        return s

    def namespace(self) -> str | None:
        c = self.next()
        if c.isupper():
            return c
        if c.islower():
            return None
        raise _Invalid("bad namespace")

    # -- backrefs -----------------------------------------------------------------------------------
    def backref(self, fn: _Printable) -> None:
        start = self.pos - 1
        target = self.base62()
        if target >= start:
            raise _Invalid("backref must point backwards")
        saved = self.pos
        self.pos = target
        self.enter()
        fn()
        self.leave()
        self.pos = saved

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Invalid("too deep")

    def leave(self) -> None:
        self.depth -= 1

    # -- grammar ------------------------------------------------------------------------------------
    def path(self, in_value: bool) -> None:
        self.enter()
        tag = self.next()
        if tag == "C":
            self.disambiguator()
            self.w(self.ident())
        elif tag == "N":
            ns = self.namespace()
            self.path(in_value)
            dis = self.disambiguator()
            name = self.ident()
            if ns is not None:
                self.w("::{")
                self.w({"C": "closure", "S": "shim"}.get(ns, ns))
                if name:
                    self.w(":" + name)
                self.w(f"#{dis}}}")
            elif name:
                self.w("::" + name)
        elif tag in ("M", "X", "Y"):
            if tag != "Y":
                self.disambiguator()
                self.skip_path()
            self.w("<")
            self.type()
            if tag != "M":
                self.w(" as ")
                self.path(False)
            self.w(">")
        elif tag == "I":
            self.path(in_value)
            if in_value:
                self.w("::")
            self.w("<")
            i = 0
            while not self.eat("E"):
                if i:
                    self.w(", ")
                self.generic_arg()
                i += 1
            self.w(">")
        elif tag == "B":
            self.backref(lambda: self.path(in_value))
        else:
            raise _Invalid(f"bad path tag {tag!r}")
        self.leave()

    def skip_path(self) -> None:
        """Parse a path without printing it (the impl-path of M/X, which the printer omits)."""
        saved_out, saved_size = self.out, self.size
        self.out = []
        try:
            self.path(False)
        finally:
            self.out, self.size = saved_out, saved_size

    def generic_arg(self) -> None:
        if self.eat("L"):
            self.lifetime(self.base62())
        elif self.eat("K"):
            self.const()
        else:
            self.type()

    def lifetime(self, lt: int) -> None:
        if lt == 0:
            self.w("'_")
            return
        depth = self.bound_lifetimes - lt
        if depth < 0:
            raise _Invalid("lifetime out of range")
        self.w("'" + (chr(ord("a") + depth) if depth < 26 else f"_{depth}"))

    def binder(self, body: _Printable) -> None:
        bound = self.opt_integer62("G")
        if bound > 1024:
            raise _Invalid("too many bound lifetimes")
        if bound:
            self.w("for<")
            for i in range(bound):
                if i:
                    self.w(", ")
                self.bound_lifetimes += 1
                self.lifetime(1)
            self.w("> ")
        body()
        self.bound_lifetimes -= bound

    def type(self) -> None:
        self.enter()
        tag = self.next()
        if tag in _BASIC:
            self.w(_BASIC[tag])
        elif tag in ("R", "Q"):
            self.w("&")
            if self.eat("L"):
                lt = self.base62()
                if lt:
                    self.lifetime(lt)
                    self.w(" ")
            if tag == "Q":
                self.w("mut ")
            self.type()
        elif tag in ("P", "O"):
            self.w("*const " if tag == "P" else "*mut ")
            self.type()
        elif tag in ("A", "S"):
            self.w("[")
            self.type()
            if tag == "A":
                self.w("; ")
                self.const()
            self.w("]")
        elif tag == "T":
            self.w("(")
            n = 0
            while not self.eat("E"):
                if n:
                    self.w(", ")
                self.type()
                n += 1
            self.w(",)" if n == 1 else ")")
        elif tag == "F":
            self.binder(self.fn_sig)
        elif tag == "D":
            self.w("dyn ")
            self.binder(self.dyn_bounds)
            if not self.eat("L"):
                raise _Invalid("dyn without lifetime")
            lt = self.base62()
            if lt:
                self.w(" + ")
                self.lifetime(lt)
        elif tag == "B":
            self.backref(self.type)
        else:
            self.pos -= 1
            self.path(False)
        self.leave()

    def fn_sig(self) -> None:
        if self.eat("U"):
            self.w("unsafe ")
        if self.eat("K"):
            if self.eat("C"):
                abi = "C"
            else:
                abi = self.ident().replace("_", "-")
            self.w(f'extern "{abi}" ')
        self.w("fn(")
        n = 0
        while not self.eat("E"):
            if n:
                self.w(", ")
            self.type()
            n += 1
        self.w(")")
        if self.eat("u"):
            return  # returns (): printed as nothing
        self.w(" -> ")
        self.type()

    def dyn_bounds(self) -> None:
        n = 0
        while not self.eat("E"):
            if n:
                self.w(" + ")
            self.dyn_trait()
            n += 1

    def dyn_trait(self) -> None:
        # The path may end in generic args that the associated-type bindings continue: print "<" ourselves.
        open_args = self.path_maybe_open_generics()
        n = 0
        while self.eat("p"):
            self.w(", " if open_args or n else "<")
            open_args = True
            name = self.ident()
            self.w(f"{name} = ")
            self.type()
            n += 1
        if open_args:
            self.w(">")

    def path_maybe_open_generics(self) -> bool:
        if self.eat("B"):
            result = [False]

            def again() -> None:
                result[0] = self.path_maybe_open_generics()

            self.backref(again)
            return result[0]
        if self.eat("I"):
            self.path(False)
            self.w("<")
            i = 0
            while not self.eat("E"):
                if i:
                    self.w(", ")
                self.generic_arg()
                i += 1
            return True
        self.path(False)
        return False

    def const(self) -> None:
        self.enter()
        tag = self.next()
        if tag == "B":
            self.backref(self.const)
        elif tag == "p":
            self.w("_")
        elif tag in ("h", "t", "m", "y", "o", "j", "a", "s", "l", "x", "n", "i"):
            neg = tag in ("a", "s", "l", "x", "n", "i") and self.eat("n")
            value = self.hex_number()
            text = str(value) if value < 1 << 64 else hex(value)  # rustc-demangle switches to hex past u64
            self.w(("-" if neg else "") + text)
        elif tag == "b":
            v = self.hex_number()
            if v > 1:
                raise _Invalid("bad bool")
            self.w("true" if v else "false")
        elif tag == "c":
            v = self.hex_number()
            if v > 0x10FFFF:
                raise _Invalid("bad char")
            self.w(repr(chr(v)))
        else:
            raise _Invalid("const not handled by the fallback")
        self.leave()

    def hex_number(self) -> int:
        start = self.pos
        while self.peek() in "0123456789abcdef" and self.peek():
            self.pos += 1
        digits = self.sym[start : self.pos]
        if not self.eat("_"):
            raise _Invalid("bad hex number")
        if len(digits) > 32:
            raise _Invalid("number too large")
        return int(digits, 16) if digits else 0


def demangle_v0(name: str) -> str | None:
    """The readable form of a v0 symbol (``_R…``, also ``R…`` and ``__R…``), or None when it is not one."""
    if name.startswith("_R"):
        body = name[2:]
    elif name.startswith("__R"):
        body = name[3:]
    elif name.startswith("R"):
        body = name[1:]
    else:
        return None
    llvm = body.find(".llvm.")
    if llvm >= 0 and all(c in "0123456789ABCDEF@" for c in body[llvm + 6 :]):
        body = body[:llvm]  # LLVM's uniquing suffix, dropped exactly when rustc-demangle drops it
    dot = body.find(".")
    suffix = ""
    if dot >= 0:
        body, suffix = body[:dot], body[dot:]
    if not body or not body[0].isupper() or not body.isascii():
        return None
    p = _Printer(body)
    try:
        if p.peek().isdigit():  # encoding version
            p.decimal()
        p.path(True)
        if p.pos < len(body) and p.peek().isupper():  # instantiating crate: parsed, not printed
            p.skip_path()
        if p.pos != len(body):
            return None
    except (_Invalid, RecursionError):
        return None
    return "".join(p.out) + suffix  # a non-LLVM suffix (".cold", …) is kept as is, like rustc-demangle
