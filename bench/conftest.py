"""Fixtures for ``pytest bench/ --benchmark-only`` (pytest-benchmark).

Thread count: ``FASTCONV_BENCH_THREADS`` (default: all cores), pinned for
Numba, BLAS (when threadpoolctl is installed) and PyTorch (when installed),
and recorded in every benchmark's ``extra_info``.
"""

import os

import numba
import pytest

import fastconv
from fastconv import _suite


def pytest_configure(config):
    # pyproject's addopts carry --benchmark-disable for the test suite; asking
    # for --benchmark-only here means benchmarks are wanted.  This hook runs
    # before pytest-benchmark's own (trylast) pytest_configure reads the options.
    if config.getoption("benchmark_only", False):
        config.option.benchmark_enable = True


@pytest.fixture(scope="session")
def threads():
    """Pin every thread pool in this process to the same thread count."""
    n = int(os.environ.get("FASTCONV_BENCH_THREADS", numba.config.NUMBA_NUM_THREADS))
    fastconv.set_num_threads(n)  # not numba's: see fastconv/_threads.py
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(n)
    return n


@pytest.fixture
def run(benchmark, threads):
    """Benchmark ``fn`` after a warm-up call and record throughput in extra_info.

    ``run(fn, case, pass_, dtype, impl)``: the warm-up keeps Numba's JIT
    compilation out of the timings; afterwards ``extra_info`` gets
    ``gflops`` (convolutions) or ``gbps`` (pooling), ``pct_peak`` and
    ``threads``.
    """

    def _run(fn, case, pass_, dtype, impl):
        fn()  # warm-up: JIT compilation is never measured
        benchmark.group = f"{_suite.PASS_ABBREV[pass_]}-{case.id}-{dtype}"
        benchmark.extra_info.update(threads=threads, impl=impl, case=case.id,
                                    geometry=case.describe(), dtype=dtype, **{"pass": pass_})
        result = benchmark(fn)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:  # None when benchmarks are disabled
            median = stats.stats.median
            work = case.work(pass_, dtype)
            if pass_ in _suite.POOL_PASSES:
                rate, peak, key = work / median / 1e9, _suite.PEAK_GBPS, "gbps"
            else:
                rate, peak, key = work / median / 1e9, _suite.PEAK_GFLOPS[dtype], "gflops"
            benchmark.extra_info[key] = round(rate, 3)
            benchmark.extra_info["pct_peak"] = round(100 * rate / peak, 2)
        return result

    return _run
