"""Numba's threading layer and OpenMP wait policy for fastconv: chosen once, at import.

Measured on the 2-core reference machine (a 64x576 @ 576x25088 float32
matmul right after a fastconv call; 162 GFLOP/s in a process that never
called fastconv):

* omp layer, libgomp's default spin: idle workers spin for ~300k iterations
  after each parallel region, and the matmul drops to 97 GFLOP/s.
* omp layer with ``GOMP_SPINCOUNT=3000``: 164 GFLOP/s, and back-to-back
  small calls cost the same as with the default spin (7-9 us).
* ``GOMP_SPINCOUNT=0`` (or the workqueue layer): 70-96 us per small call.
* tbb or workqueue loaded: matmuls ran at 46 GFLOP/s even when idle.

So fastconv asks for the omp layer (falling back to tbb, then workqueue) and a
short spin, when its first kernel runs (not at import: GNU OpenMP is not
fork-safe, so a process that imports fastconv and then forks must not have
started the pool yet).  It never overrides a choice the user made (``NUMBA_THREADING_LAYER``,
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` in the environment, or a
non-default ``numba.config.THREADING_LAYER``), and it leaves ``os.environ``
exactly as it found it: libgomp reads ``GOMP_SPINCOUNT`` once, when Numba
loads it, so the variable is only set while the thread pool starts.
"""

import os

import numba

#: libgomp busy-wait iterations before an idle worker sleeps (a few microseconds).
SPIN_COUNT = "3000"

_USER_VARIABLES = ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _libgomp_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


#: What :func:`configure` did, or None before the first kernel call.
STATUS = None


def configure():
    """Pick the threading layer and spin policy, then start Numba's thread pool.

    Returns
    -------
    str
        What was done, for diagnostics; also kept in :data:`STATUS`.
    """
    global STATUS
    if STATUS is None:
        STATUS = _configure()
    return STATUS


def _configure():
    from numba.np.ufunc import parallel

    if any(v in os.environ for v in _USER_VARIABLES) or numba.config.THREADING_LAYER != "default":
        return "user's threading settings kept"
    if getattr(parallel, "_is_initialized", False):
        return "Numba's thread pool was already running: its settings kept"
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    if _libgomp_loaded():
        parallel._launch_threads()
        return "libgomp already loaded by another library: its spin policy kept"
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        parallel._launch_threads()
    finally:
        del os.environ["GOMP_SPINCOUNT"]
    return f"omp preferred, GOMP_SPINCOUNT={SPIN_COUNT} for Numba's pool"

