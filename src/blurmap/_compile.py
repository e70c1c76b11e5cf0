"""How blurmap's inner loops are compiled: by numba, without the GIL, cached on disk wherever that works.

numba's disk cache raises, at import or at the first call, where it finds no writable place for
a package (a read-only install whose HOME is missing or invalid: a container, a build sandbox, a
cluster worker). There the loops are compiled in memory, once per process, instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numba


def _probe(x: int) -> int:
    """A trivial loop, compiled with the disk cache to see whether the cache works for this package."""
    return x + 1


def _disk_cache_works() -> bool:
    """Return whether numba can cache compiled code for this package (compiling and calling _probe, cached)."""
    try:
        return numba.njit(cache=True)(_probe)(1) == 2
    except (RuntimeError, OSError):  # no cache locator; an index file that cannot be opened
        return False


DISK_CACHE = _disk_cache_works()


def compiled(func: Callable | None = None, *, inline: str = "never"):
    """Return `func` compiled by numba in nopython mode, releasing the GIL, cached on disk if DISK_CACHE and numba
    can cache beside the function's file.

    Use as ``@compiled`` or ``@compiled(inline="always")`` (small helpers inlined into their callers).

    Examples
    --------
    >>> @compiled
    ... def twice(x):
    ...     return 2 * x
    >>> twice(21)
    42
    """
    if func is None:
        return lambda f: compiled(f, inline=inline)
    try:
        return numba.njit(cache=DISK_CACHE, nogil=True, inline=inline)(func)
    except RuntimeError:  # no cache place for this function's own file (one typed in at a prompt, say)
        return numba.njit(nogil=True, inline=inline)(func)
