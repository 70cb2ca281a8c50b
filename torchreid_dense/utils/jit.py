"""Optional Numba compilation for the plugin's CPU kernels: where Numba is missing, the torch paths run instead."""
try:  # optional accelerator: every kernel has a torch path, the reference and the GPU path
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

__all__ = ["available", "jit"]


def available():
    """Whether the kernels can run (Numba importable)."""
    return numba is not None


def jit(fn):
    """``fn`` compiled as a serial, GIL-releasing, disk-cached Numba kernel (unchanged without Numba)."""
    return numba.njit(cache=True, nogil=True, boundscheck=False)(fn) if numba is not None else fn
