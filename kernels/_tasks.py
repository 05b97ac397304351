"""The one parallel kernel that every engine runs its tasks with.

Each engine (direct, packed, weight gradient) cuts a call into independent
runs of tasks and writes a plan: a read-only int64 array whose first
:data:`PLAN_HEAD` slots are the address of the engine's runs function, the
number of runs, and the address of a finishing step (or 0).  The rest of
the plan belongs to the engine.  :func:`run_tasks` runs the runs in
parallel, one per ``prange`` iteration, then the finishing step on the
calling thread.

Why one kernel: compiling a parallel kernel costs 0.5-0.9 s (Numba's parfor
passes and the outlined loop body), however little its body does.  With one
kernel per engine, a first forward pass and its two gradients compiled two
or three of them; now they compile this one (and its serial build, for
small calls), once per dtype.
"""

import numpy as np
from numba import prange

from ._jit import (
    CalledByAddress,
    call_compiled,
    parallel_kernel,
    serial_helper,
    serial_variant,
)

#: Plan slots shared by every engine: runs function, number of runs, finishing step.
PLAN_RUNS, PLAN_NRUNS, PLAN_FINISH = 0, 1, 2
PLAN_HEAD = 3

#: The arrays of an engine's runs function (:func:`engine_runs`), as
#: :class:`._jit.CalledByAddress` declares them.
RUNS_ARRAYS = dict(plan=(1, False, np.int64), x=(4, False), w=(4, False), b=(1, False),
                   out=(4, True), out2=(4, True))


@serial_helper
def engine_runs(run, plan, x, w, b, out, out2):
    """The interface of an engine's runs function, which :func:`run_tasks` calls by address.

    ``run(run, plan, x, w, b, out, out2)`` runs run ``run`` of the plan's
    tasks, or, with ``run == -1``, the finishing step.  ``x``, ``w``, ``b``
    are read; ``out`` and ``out2`` are written (each engine documents what
    they hold); all arrays are C-contiguous and of one float dtype besides
    ``plan``.  This function only names that interface for
    :func:`._jit.call_compiled` (:data:`ENGINE_RUNS`): it is never compiled
    or called.
    """


#: The declaration every engine's runs function repeats (:func:`declare_runs`).
ENGINE_RUNS = CalledByAddress(engine_runs, arrays=RUNS_ARRAYS, interface=True)


def declare_runs(function):
    """Declare ``function`` as an engine's runs function (the :func:`engine_runs` interface)."""
    return CalledByAddress(function, arrays=RUNS_ARRAYS)


@parallel_kernel
def run_tasks(plan, x, w, b, out, out2):
    """Run the plan's runs in parallel, then its finishing step (see the module docstring).

    Parameters
    ----------
    plan : ndarray of int64, read-only
        ``plan[PLAN_RUNS]`` the address of the engine's runs function for
        this dtype, ``plan[PLAN_NRUNS]`` the number of runs,
        ``plan[PLAN_FINISH]`` the address of the finishing step or 0; the
        rest is the engine's.
    x, w, b, out, out2 : ndarray
        As :func:`engine_runs` takes them.

    Runs write disjoint parts of ``out`` and ``out2`` (each engine's
    contract), so they may run in any order and on any thread.
    """
    runs = plan[PLAN_RUNS]
    finish = plan[PLAN_FINISH]
    # np.int64(...): prange indices are uint64; run indices are int64
    for i in prange(plan[PLAN_NRUNS]):
        call_compiled(runs, engine_runs, (np.int64(i), plan, x, w, b, out, out2))
    if finish != 0:
        call_compiled(finish, engine_runs, (np.int64(-1), plan, x, w, b, out, out2))


#: :func:`run_tasks` on the calling thread, for calls so small that waking the
#: thread pool (about 2.6 us) costs more than the work.  Same runs, same order.
run_tasks_serial = serial_variant(run_tasks, "run_tasks_serial")

_UNUSED = {}


def _unused(dtype, ndim):
    key = (np.dtype(dtype), ndim)
    array = _UNUSED.get(key)
    if array is None:
        array = _UNUSED[key] = np.empty((0,) * ndim, key[0])
    return array


def unused_input(dtype):
    """An empty 1-D array of ``dtype``, for a ``b`` an engine does not read."""
    return _unused(dtype, 1)


def unused_output(dtype):
    """An empty 4-D array of ``dtype``, for an ``out2`` an engine does not write."""
    return _unused(dtype, 4)


#: Most zero biases :func:`zero_bias` keeps.
MAX_ZERO_BIASES = 256

_ZERO_BIASES = {}


def zero_bias(n, dtype):
    """An array of ``n`` zeros (the engines' bias argument, never written), kept per size and dtype.

    Writeable: Numba compiles read-only arrays as another type, so the
    engines' compiled builds would not match it.
    """
    z = _ZERO_BIASES.get((n, dtype))
    if z is None:
        if len(_ZERO_BIASES) >= MAX_ZERO_BIASES:
            _ZERO_BIASES.clear()
        z = _ZERO_BIASES[(n, dtype)] = np.zeros(n, dtype)
    return z
