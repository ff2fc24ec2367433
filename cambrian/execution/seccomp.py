"""No kernel keyrings for candidate code: a seccomp filter that refuses their three system calls.

Kernel keyrings are neither files nor IPC objects: no mount, IPC or PID namespace closes them.
A key that one run adds to its uid's keyring, with permissions open to everyone, outlives the
run and is listed in ``/proc/keys`` and readable by the next run under another uid (tried:
``tests/sandbox/test_integrity.py``). That is a channel from one candidate run to a later one,
for instance from the attention pack's full scoring pass, which sees every evaluation window,
to its prefix pass, which must not. Nothing a candidate needs uses keyrings, so ``add_key``,
``request_key`` and ``keyctl`` fail with ``EPERM``, as under Docker's default profile; so does
every system call of a foreign ABI (i386 or x32 on x86-64), through which the filter could
otherwise be stepped around.

:func:`filter_program` builds the classic-BPF program once, in the parent; :func:`install`
loads it, in the child between fork and exec (it is inherited across exec and fork and can't
be removed). Linux on x86-64 and aarch64; elsewhere :func:`filter_program` returns None.
"""

from __future__ import annotations

import ctypes
import platform
import struct

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
RET_ALLOW, RET_EPERM = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
LD_ABS_W, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06  # classic BPF opcodes
X32_BIT = 0x40000000
# machine -> (AUDIT_ARCH_*, numbers of add_key, request_key, keyctl)
ARCHES = {"x86_64": (0xC000003E, (248, 249, 250)), "aarch64": (0xC00000B7, (217, 218, 219))}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program() -> ctypes.Array | None:
    """The filter for this machine's architecture, as a ``struct sock_filter[]``, or None."""
    arch = ARCHES.get(platform.machine())
    if arch is None:
        return None
    audit, (add_key, request_key, keyctl) = arch
    prog = b"".join([
        _op(LD_ABS_W, 4),  # 0: seccomp_data.arch
        _op(JEQ_K, audit, jt=1),  # 1: native ABI: go on at 3
        _op(RET_K, RET_EPERM),  # 2: a foreign ABI: refused
        _op(LD_ABS_W, 0),  # 3: seccomp_data.nr
        _op(JGE_K, X32_BIT, jt=4),  # 4: x32 numbers: refused (9)
        _op(JEQ_K, add_key, jt=3),  # 5
        _op(JEQ_K, request_key, jt=2),  # 6
        _op(JEQ_K, keyctl, jt=1),  # 7
        _op(RET_K, RET_ALLOW),  # 8
        _op(RET_K, RET_EPERM),  # 9
    ])
    return ctypes.create_string_buffer(prog, len(prog))


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(libc, prog: ctypes.Array) -> None:
    """Load ``prog`` into this process (no new privileges first, as an unprivileged process must)."""
    fprog = _Fprog(len(prog) // 8, ctypes.addressof(prog))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter not loaded")
