"""Demangling, checked on every symbol of every fixture against llvm-cxxfilt-14 and wasmtime (rustc-demangle)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _symbolizer_oracles as oracles
from symbolizer._demangle import _demangle_legacy, demangle
from symbolizer._demangle_v0 import demangle_v0

pytestmark = pytest.mark.skipif(
    not (oracles.have("wasm-objdump") and oracles.have(oracles.LLVM_DWARFDUMP)),
    reason="wasm-objdump and llvm-dwarfdump-14 list the fixtures' symbols",
)

_HASH = re.compile(r"::h[0-9a-f]{16}$")
_LLVM_SUFFIX_CXXFILT = re.compile(r" \(\.llvm\.\d+\)$")
# Rust legacy escapes (rustc_symbol_mangling/src/legacy.rs), for reading llvm-cxxfilt's Itanium view of them.
_ESC = {"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ","}


def _llvm_legacy_to_readable(text: str) -> str:
    """llvm-cxxfilt-14 reads a legacy Rust name as Itanium C++: normalize its output to rustc-demangle's form.

    Normalizations, each a documented difference and not a disagreement about the name:
    1. llvm keeps the ``::h<16 hex>`` hash segment; the readable form drops it.
    2. llvm prints a ``.llvm.<n>`` suffix as `` (.llvm.<n>)``; rustc-demangle drops it.
    3. llvm does not decode Rust's ``$LT$``-style escapes, ``$u<hex>$`` code points, ``..`` for ``::`` nor the
       ``_$`` segment prefix; decode them with rustc's own table.
    """
    text = _HASH.sub("", _LLVM_SUFFIX_CXXFILT.sub("", text))
    segments = []
    for seg in text.split("::"):
        if seg.startswith("_$"):
            seg = seg[1:]
        seg = re.sub(
            r"\$(SP|BP|RF|LT|GT|LP|RP|C|u[0-9a-f]+)\$",
            lambda m: _ESC.get(m[1]) or chr(int(m[1][1:], 16)),
            seg,
        )
        segments.append(seg.replace("..", "::"))
    return "::".join(segments)


@pytest.fixture(scope="module")
def names() -> tuple[str, ...]:
    found = oracles.all_fixture_names()
    assert len(found) > 10_000  # std's DWARF: the fixtures hold ~12k distinct symbols
    return found


def test_every_fixture_has_both_manglings(names: tuple[str, ...]) -> None:
    """The fixture set exercises legacy and v0 Rust symbols and plain C names."""
    assert sum(n.startswith("_ZN") for n in names) > 5000
    assert sum(n.startswith("_R") for n in names) > 100
    assert "main" in names and "__original_main" in names


@pytest.mark.skipif(not oracles.have(oracles.LLVM_CXXFILT), reason="needs llvm-cxxfilt-14")
def test_every_fixture_symbol_matches_llvm_cxxfilt(names: tuple[str, ...]) -> None:
    """Each fixture symbol demangles as llvm-cxxfilt-14 does: v0 exactly, legacy up to the documented normalization."""
    reference = oracles.cxxfilt(names)
    mismatches = []
    for name, ref in zip(names, reference):
        if name.startswith("_ZN"):
            expected = _llvm_legacy_to_readable(ref)
        elif name.startswith("_R"):
            expected = _LLVM_SUFFIX_CXXFILT.sub("", ref)  # normalization 2 above
        else:
            expected = ref  # not mangled: llvm-cxxfilt returns it unchanged, so must we
        if demangle(name) != expected:
            mismatches.append((name, demangle(name), expected))
    assert mismatches == []


def test_every_fixture_symbol_matches_wasmtime(names: tuple[str, ...]) -> None:
    """Each fixture symbol, put in a name section and trapped in wasmtime, prints as our readable name plus hashes."""
    pyderust = pytest.importorskip("pyderust")
    printed = oracles.wasmtime_demangled(names)
    assert len(printed) == len(names)
    mismatches = []
    for name in names:
        # wasmtime prints rustc-demangle's full form: legacy hash kept, v0 crate disambiguators "[…]" kept.
        full = printed[name]
        readable = re.sub(r"\[[0-9a-f]+\]", "", _HASH.sub("", full)) if name.startswith(("_ZN", "_R")) else full
        if demangle(name) != readable:
            mismatches.append((name, demangle(name), full))
        try:
            ours_full = pyderust.demangle(name, include_hash=True)
        except pyderust.DemangleError:
            ours_full = name
        if ours_full != full:  # same crate, same output: byte for byte
            mismatches.append((name, ours_full, full))
    assert mismatches == []


def test_pure_python_legacy_fallback_agrees_with_rustc_demangle(names: tuple[str, ...]) -> None:
    """The pure-Python legacy demangler gives rustc-demangle's readable form for every legacy fixture symbol."""
    pyderust = pytest.importorskip("pyderust")
    legacy = [n for n in names if n.startswith("_ZN")]
    assert [_demangle_legacy(n) for n in legacy] == [pyderust.demangle(n) for n in legacy]


def test_without_the_binary_wheels_rust_still_demangles() -> None:
    """With pyderust and pycxxfilt unimportable, Rust names still demangle in Python; C++ names come back as given."""
    code = (
        "import sys; sys.modules['pyderust'] = None; sys.modules['pycxxfilt'] = None\n"
        "from symbolizer._demangle import demangle\n"
        "print(demangle('_ZN6panics6worker6handle17h4f85183a7c65d26fE'))\n"
        "print(demangle('_RNvCscmw449OM9Q0_6panics4main'))\n"
        "print(demangle('_ZNK2ns1S1fEiPc'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=oracles.ROOT, check=True)
    assert out.stdout.split("\n")[:3] == [
        "panics::worker::handle",
        "panics::main",
        "_ZNK2ns1S1fEiPc",
    ]


def test_pure_python_v0_fallback_agrees_with_rustc_demangle(names: tuple[str, ...]) -> None:
    """The pure-Python v0 demangler gives rustc-demangle's readable form for every v0 fixture symbol."""
    pyderust = pytest.importorskip("pyderust")
    v0 = [n for n in names if n.startswith("_R")]
    assert [demangle_v0(n) for n in v0] == [pyderust.demangle(n) for n in v0]


V0_SOURCE = r"""
// Instantiations that exercise v0 mangling: fn pointers, dyn with assoc bindings, arrays, const generics,
// higher-ranked lifetimes, tuples, raw pointers, closures, trait impls.
use std::fmt::Debug;
pub trait Tr { type A; fn go(&self) -> usize; }
pub struct S<const N: usize, const B: bool, const C: char, const I: i32>([u8; N]);
impl<const N: usize, const B: bool, const C: char, const I: i32> Tr for S<N, B, C, I> { type A = u8; #[inline(never)] fn go(&self) -> usize { N + B as usize + C as usize + I as usize } }
#[inline(never)] pub fn g<T: Debug>(t: T) -> String { format!("{:?}", t) }
#[inline(never)] pub fn h(f: for<'a> fn(&'a str) -> &'a str, d: &dyn Iterator<Item = u32>, p: *const (i8, f64), q: *mut [u16]) -> usize { f("x").len() + d.size_hint().0 + p as usize + q as *mut u16 as usize }
#[inline(never)] pub fn k<'a>(x: &'a mut &'a [&'a str], y: Box<dyn Fn(&str) -> bool + Send + 'a>) -> usize { x.len() + y("z") as usize }
#[no_mangle] pub fn entry() -> usize {
    let s = S::<4, true, 'x', -3>([0; 4]);
    let c = |x: u64| x + 1;
    let r = s.go() + g((1u8, 'c', "s", [1i64; 3], (), 2.0f32, -1isize, u128::MAX)).len() + g(&s.0[..]).len() + c(3) as usize;
    let v = vec![1u32, 2];
    let mut a: &[&str] = &["a"];
    r + h(|s| s, &v.into_iter(), std::ptr::null(), std::ptr::null_mut::<[u16; 0]>() as *mut [u16]) + k(&mut a, Box::new(|s: &str| s.is_empty())) + g(unsafe_fn_ptr()).len()
}
pub unsafe extern "C" fn ex(_: i32) -> ! { loop {} }
fn unsafe_fn_ptr() -> unsafe extern "C" fn(i32) -> ! { ex }
"""


@pytest.fixture(scope="module")
def native_v0_names(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """v0 symbols of a host cdylib built here: fn pointers, dyn with bindings, for<'a>, arrays, tuples, consts."""
    rustc = shutil.which("rustc")
    if rustc is None:
        pytest.skip("needs a host rustc")
    d = tmp_path_factory.mktemp("v0")
    (d / "v0.rs").write_text(V0_SOURCE)
    subprocess.run(
        [rustc, "--crate-type", "cdylib", "-C", "symbol-mangling-version=v0", "-O", "-o", str(d / "libv0.so"),
         str(d / "v0.rs")], check=True, capture_output=True,
    )
    nm = shutil.which("llvm-nm-14") or "nm"
    out = subprocess.run([nm, str(d / "libv0.so")], capture_output=True, text=True, check=True).stdout
    found = tuple(sorted({ln.split()[-1] for ln in out.splitlines() if ln.split() and ln.split()[-1].startswith("_R")}))
    assert len(found) > 100
    return found


def test_pure_python_v0_fallback_on_richer_types(native_v0_names: tuple[str, ...]) -> None:
    """On a std-sized set of v0 symbols with every type form, the Python fallback equals rustc-demangle."""
    pyderust = pytest.importorskip("pyderust")
    readable = [pyderust.demangle(n) for n in native_v0_names]
    assert any("dyn for<'a" in r for r in readable) and any('extern "C" fn' in r for r in readable)
    assert [demangle_v0(n) for n in native_v0_names] == readable


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_pure_python_v0_never_disagrees(names: tuple[str, ...], data: st.DataObject) -> None:
    """On mutated v0 symbols the fallback says what rustc-demangle says, or gives up (None); never something else."""
    pyderust = pytest.importorskip("pyderust")
    name = data.draw(st.sampled_from([n for n in names if n.startswith("_R")]))
    pos = data.draw(st.integers(2, len(name)))
    name = name[:pos] + data.draw(st.sampled_from(["", "0", "_", "B", "E", "I", "N", "s_", "9", "z"])) + name[pos + data.draw(st.integers(0, 3)) :]
    try:
        expected: str | None = pyderust.demangle(name)
    except pyderust.DemangleError:
        expected = None
    ours = demangle_v0(name)
    assert ours is None or ours == expected


@pytest.mark.skipif(
    not (shutil.which("clang++-14") and oracles.have(oracles.LLVM_CXXFILT)), reason="needs clang++-14, llvm-cxxfilt-14"
)
def test_cplusplus_names_match_llvm_cxxfilt(tmp_path: Path) -> None:
    """Itanium C++ names (from a real clang++-14 object) demangle exactly as llvm-cxxfilt-14 prints them."""
    pytest.importorskip("pycxxfilt")
    src = tmp_path / "x.cpp"
    src.write_text(
        "template <class T> struct V { void push(const T&); };\n"
        "template <class T> void V<T>::push(const T&) {}\n"
        "namespace ns { struct S { int f(int, char*) const; }; int S::f(int, char*) const { return 0; } }\n"
        "template struct V<int>; template struct V<ns::S>;\n"
        "auto l = [](int x) { return x; }; int g() { return l(1); }\n"
        "namespace a::b { template <typename... A> int h(A...) { return 0; } template int h(int, double, V<int>*); }\n"
    )
    obj = tmp_path / "x.o"
    subprocess.run(["clang++-14", "-c", str(src), "-o", str(obj)], check=True)
    nm = shutil.which("llvm-nm-14") or "nm"
    syms = subprocess.run([nm, "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    cxx = tuple(line.split()[-1] for line in syms.splitlines() if line.split()[-1].startswith("_Z"))
    assert len(cxx) >= 4
    assert [demangle(n) for n in cxx] == oracles.cxxfilt(cxx)


def test_unmangled_and_malformed_names_come_back_unchanged() -> None:
    """Plain names, truncated manglings and non-ASCII names are returned as given."""
    for name in ["main", "_start", "__original_main", "_ZN", "_R", "_ZN3foo", "_RNvC", "wasm-function[3]", "é", ""]:
        assert demangle(name) == name


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=200), st.from_regex(r"_(ZN|R)[0-9A-Za-z_$.]{0,80}", fullmatch=True),
                 st.from_regex(r"_R[CMNXYIBKLGDFTARQPOSpu0-9a-z_]{0,60}", fullmatch=True)))
def test_demangle_never_raises(name: str) -> None:
    """Any string demangles to a string without raising, and so do the pure-Python fallbacks."""
    assert isinstance(demangle(name), str)
    assert isinstance(demangle_v0(name) or "", str)
    assert isinstance(_demangle_legacy(name) or "", str)
