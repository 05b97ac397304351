"""``fastconv.set_num_threads``: the thread count, with fastconv's threading policy in place.

fastconv chooses Numba's threading layer and a short OpenMP spin when its
first kernel runs (see ``kernels/_threading.py``): the choice can only be made
before Numba's thread pool starts.  ``numba.set_num_threads`` starts that pool
itself, so calling it first leaves libgomp's default spin in place, and
NumPy's BLAS calls right after fastconv's then compete with spinning threads:
a 64x576 @ 576x25088 float32 matmul right after each fastconv call ran at 88
GFLOP/s that way, 135-141 with fastconv's policy.
"""

import numba


def set_num_threads(n):
    """Run fastconv's kernels on ``n`` threads (``numba.set_num_threads``), after its threading setup.

    Use it instead of ``numba.set_num_threads`` before the first fastconv
    call, so that fastconv can still pick its threading layer and spin
    policy; afterwards either works.  Like Numba's, the setting is per
    calling thread.

    Parameters
    ----------
    n : int
        From 1 to ``numba.config.NUMBA_NUM_THREADS`` (the size of Numba's
        thread pool, set from the ``NUMBA_NUM_THREADS`` environment variable
        at startup; default: the number of CPUs).

    Raises
    ------
    ValueError
        If ``n`` is out of that range.
    TypeError
        If ``n`` is not an integer.
    """
    from . import _validation as v
    from .kernels import _threading

    n = v.thread_count(n, numba.config.NUMBA_NUM_THREADS)
    _threading.configure()
    numba.set_num_threads(n)
