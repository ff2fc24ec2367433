"""Inline C++: torch extensions and plain shared libraries, compiled once, cached per machine.

``CppExtension(prefix, source, functions).load()`` returns the compiled module (built
through ``torch.utils.cpp_extension.load_inline``) or None, with one RuntimeWarning,
when it can't be built. The build lives under ``$CAMBRIAN_EXT_DIR`` or
``~/.cache/cambrian/ext/torch<version>/<prefix>_<hash>/``, the hash covering the
source and flags; a built ``.so`` is imported directly (no ninja run, no build
lock), and a lock left by a killed build (older than 15 minutes) is removed first.
``SharedLibrary`` builds C++ that includes no torch header (raw pointers behind an
``extern "C"`` interface, loaded through ctypes): it compiles in about a second, so a
sandboxed worker (whose HOME, and so cache, is its own work dir) can afford to build
it per evaluation, which a torch extension (a minute of compiling) can't.
``CAMBRIAN_NO_CPP_EXT=1`` makes every ``load()`` return None (pure-torch paths).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch

# -march=native: the cache is per machine, so AVX2 / AVX-512 may be used;
# -fopenmp-simd honours `omp simd` reductions without -ffast-math.
CFLAGS = ["-O3", "-march=native", "-fopenmp-simd"]


CSRC = Path(__file__).with_name("csrc")  # the C++ sources, shipped as package data
_LOCAL_INCLUDE = re.compile(r'^#include "([\w.]+)"$', re.M)


def read_source(name: str) -> str:
    """The text of ``csrc/<name>``, with each ``#include "x.h"`` of a file beside it inlined,
    so one string is compiled (and hashed for the cache): no include path to pass on."""
    text = (CSRC / name).read_text()
    return _LOCAL_INCLUDE.sub(lambda m: read_source(m.group(1)).rstrip("\n"), text)


def _warn_failed(what: str, fallback: str, exc: Exception) -> None:
    last = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    warnings.warn(f"cambrian: the C++ {what} failed to compile, using {fallback} "
                  f"({type(exc).__name__}: {last})", RuntimeWarning, stacklevel=4)


def ext_dir() -> Path:
    base = os.environ.get("CAMBRIAN_EXT_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cambrian", "ext")
    path = Path(base) / f"torch{torch.__version__.split('+')[0]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _import_built(path: Path, name: str) -> Any:
    """Import an already compiled extension directly: no ninja run, no build lock."""
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class _Compiled:
    """Loads once, thread-safe; ``None`` (with one warning) where the build fails or
    ``CAMBRIAN_NO_CPP_EXT`` is set. Subclasses say how to build and open (``_open``)."""

    what: str
    fallback: str

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: Any = None
        self._failed = False

    def _open(self) -> Any:
        raise NotImplementedError

    def load(self) -> Any:
        if self._loaded is not None or self._failed:
            return self._loaded
        if os.environ.get("CAMBRIAN_NO_CPP_EXT"):
            self._failed = True
            return None
        with self._lock:
            if self._loaded is None and not self._failed:
                try:
                    self._loaded = self._open()
                except Exception as exc:  # no compiler, no headers, ...: fall back, don't fail
                    self._failed = True
                    _warn_failed(self.what, self.fallback, exc)
        return self._loaded


class CppExtension(_Compiled):
    """One inline C++ module. ``what`` and ``fallback`` word the warning on failure."""

    def __init__(self, prefix: str, source: str, functions: list[str], *, what: str,
                 fallback: str, cflags: list[str] | None = None,
                 ldflags: list[str] | None = None):
        super().__init__()
        self.prefix, self.source, self.functions = prefix, source, functions
        self.what, self.fallback = what, fallback
        self.cflags, self.ldflags = cflags or CFLAGS, ldflags or []

    def name(self) -> str:
        key = self.source + " ".join(self.cflags) + ("|" + " ".join(self.ldflags) if self.ldflags else "")
        return f"{self.prefix}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def _open(self) -> Any:
        name = self.name()
        build_dir = ext_dir() / name
        build_dir.mkdir(parents=True, exist_ok=True)
        built = build_dir / f"{name}.so"
        if built.exists():
            return _import_built(built, name)
        lock = build_dir / "lock"
        if lock.exists() and time.time() - lock.stat().st_mtime > 900:
            lock.unlink(missing_ok=True)
        from torch.utils.cpp_extension import load_inline  # pulls setuptools: only when a kernel compiles

        return load_inline(name=name, cpp_sources=[self.source], functions=self.functions,
                           extra_cflags=self.cflags, extra_ldflags=self.ldflags,
                           build_directory=str(build_dir), verbose=False)


class SharedLibrary(_Compiled):
    """A C++ source with an ``extern "C"`` interface, built with ``$CXX`` (or ``c++``)
    into ``<ext_dir>/<prefix>_<hash>.so`` and loaded through ctypes. Concurrent builders
    each compile to a temporary file and rename it into place, so no lock is needed.
    ``signatures`` maps function names to (restype, argtypes)."""

    def __init__(self, prefix: str, source: str, signatures: dict[str, tuple[Any, list[Any]]], *,
                 what: str, fallback: str, cflags: list[str]):
        super().__init__()
        self.prefix, self.source, self.signatures = prefix, source, signatures
        self.what, self.fallback, self.cflags = what, fallback, cflags

    def name(self) -> str:
        key = self.source + " ".join(self.cflags)
        return f"{self.prefix}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def _build(self, target: Path) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.stem}-", dir=target.parent))
        try:
            src, lib = tmp / "source.cpp", tmp / "lib.so"
            src.write_text(self.source)
            cmd = [os.environ.get("CXX") or "c++", *self.cflags, "-shared", "-fPIC", str(src), "-o", str(lib)]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {(out.stderr or out.stdout).strip()[-500:]}")
            os.replace(lib, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _open(self) -> Any:
        target = ext_dir() / f"{self.name()}.so"
        if not target.exists():
            self._build(target)
        lib = ctypes.CDLL(str(target))
        for fn, (restype, argtypes) in self.signatures.items():
            getattr(lib, fn).restype = restype
            getattr(lib, fn).argtypes = argtypes
        return lib
