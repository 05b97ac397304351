"""``python -m fastconv bench``: fastconv against im2col, the NumPy reference and PyTorch.

Every implementation runs the shape suite of :mod:`fastconv._suite`; the
table reports median times, fastconv's GFLOP/s (GB/s for pooling) and % of
peak, and for each other implementation the ratio ``its time / fastconv's
time`` (> 1 means fastconv is faster), with geometric means at the bottom.

Measurement rules:

* every measurement starts with untimed warm-up calls (Numba JIT
  compilation on the first; then calls for ``WARMUP_FRACTION`` of the time
  budget, for the steady state a training loop sees), then takes up to
  ``--repeat`` samples with
  :func:`time.perf_counter` within a time budget; tiny calls are looped so
  that one sample lasts at least ``MIN_SAMPLE_S``;
* the whole suite is measured ``--rounds`` times (``ROUNDS``), and each
  measurement keeps the round with its lowest median;
* a measurement during which other processes kept more than ``BUSY_SHARE``
  of the cores busy (from /proc/stat, Linux) is taken again, up to
  ``RETRIES`` times; times still disturbed are marked ``!`` in the table;
* each shape is measured with every implementation in turn
  (``MEASURE_ORDER``) before the next shape, so that a slow spell of this
  shared machine, which can last tens of seconds, tends to fall on both
  sides of a ratio rather than on one (the rounds above guard against the
  rest).  No two implementations ever run at the same time, and every
  measurement starts with its warm-up, in which the previous library's
  idle threads stop spinning (a few milliseconds);
* PyTorch runs in a separate process (``python -m fastconv._bench
  --torch-worker``: a JSON settings line, then one JSON job per line on
  stdin, one JSON timing per line on stdout), launched before this process
  has started any thread pool: Numba's and PyTorch's OpenMP pools spin
  against each other when they share a process;
* Numba, BLAS (if ``threadpoolctl`` is installed) and PyTorch are all pinned
  to ``--threads``.

PyTorch's time includes its operating-system time: its float64 path and
some float32 ones allocate large buffers on every call, which glibc returns
to the operating system when they are freed and gets back page by page on
the next call (ResNet-20 stage 1's float64 forward: 37,000 page faults per
call, 58% of PyTorch's CPU time in the kernel, 3.6x slower than without).
The table's ``sys%`` column shows PyTorch's kernel share (page faults, and
its threads' wake-ups); the JSON has its ``faults_per_call``.
``--torch-malloc reuse`` runs PyTorch with glibc keeping freed memory for
reuse (``TORCH_MALLOC``), as jemalloc or tcmalloc would, to measure PyTorch
without most of that cost.

PyTorch's gradients are timed with ``torch.nn.grad.conv2d_input`` /
``conv2d_weight``: both call ``aten.convolution_backward`` with a one-output
mask, which is exactly what autograd runs for that gradient, minus building
and walking the autograd graph, so it is the faster honest measure of the
same work.  Pool backward is ``aten.max_pool2d_with_indices_backward``.

A full run (not ``--quick``) ends with the embedding check of
:func:`embedding`: NumPy's float32 matmul speed right after a fastconv call,
against its speed in a process that never ran fastconv.

Pooling is also timed as ``out=``: fastconv writing into output arrays
allocated once and reused, as a training loop can.  Pooling moves so few
bytes per element that the operating system's page faults and zeroing of a
fresh output would cost as much as the kernel; default calls avoid them
for results of 32 MiB and up by recycling the memory of earlier results
(:mod:`fastconv._results`), ``out=`` avoids the allocation altogether.
"""

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

import numpy as np

from . import _suite

IMPLS = ("fastconv", "im2col", "reference", "torch", "out=")

#: The order in which each shape is measured: the NumPy-based ones last, so
#: that BLAS's idle threads, which spin for ~0.1 s after a call, do so during
#: the next shape's fastconv warm-up in this process rather than during
#: PyTorch's in its own (where they count as another process's load).
MEASURE_ORDER = ("fastconv", "out=", "torch", "im2col", "reference")

#: Implementations compared with fastconv in the ratios and geometric means
#: (``"out="`` is fastconv itself, pooling into reused arrays).
COMPARED = ("im2col", "reference", "torch")

#: Untimed warm-up calls after the first run for this fraction of the time
#: budget.  Results of 100 MB and more get fresh memory from the OS, whose
#: first transparent huge pages cost direct compaction: a float64 vgg pool
#: forward took 113 ms on its first three calls in a process, 22 ms on the
#: next three, and 14 ms from the tenth on (PyTorch's calls alike).
WARMUP_FRACTION = 0.2

#: Tiny calls are repeated until one sample lasts this long.
MIN_SAMPLE_S = 2e-3

#: A measurement is taken again, up to ``RETRIES`` times, when other
#: processes kept more than this share of the machine's cores busy while it
#: sampled; the attempt they disturbed least is kept.  With 2 threads on 2
#: cores, another process taking one core stalls every parallel region: such
#: a measurement once read 4.05 ms for a call that takes 236 us.
BUSY_SHARE = 0.1
RETRIES = 2

#: Default number of rounds: the whole suite is measured this many times and
#: each measurement keeps its lowest median.  Slow spells of this shared
#: machine that no process accounts for (no other load in /proc/stat, no
#: steal) made single shapes, or a whole dtype, up to 2.7x slower for tens
#: of seconds: one shape's float64 forward read 606 us in a full run against
#: 222-229 us in 8 measurements before and after, and PyTorch's LeNet
#: forward 3.55 ms against 0.94.  A second round 2-3 minutes later rarely
#: meets the same spell.
ROUNDS = 2

#: Environment of the PyTorch worker per ``--torch-malloc`` choice.  "reuse"
#: sets glibc's mmap and trim thresholds (mallopt(3)) to 4 GiB: buffers come
#: from and go back to the heap, which keeps its pages.
TORCH_MALLOC = {
    "default": {},
    "reuse": {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)},
}

#: The NumPy reference runs only where one call should take less than this.
REFERENCE_LIMIT_S = 1.0

#: Rough speed of :mod:`fastconv.reference` for that estimate (measured on
#: the suite: 0.5-10 GFLOP/s for convolutions, plus ~15 ms per group; pooling
#: forward ~0.1 GB/s, backward ~1 GB/s).
REFERENCE_FLOPS_PER_S = 1e9
REFERENCE_S_PER_GROUP = 0.015
REFERENCE_BYTES_PER_S = {"pool_forward": 1e8, "pool_backward": 1e9}


# --------------------------------------------------------------------------- timing


def measure(fn, repeat, budget):
    """Time ``fn()`` after warm-up calls (see ``WARMUP_FRACTION``).

    Parameters
    ----------
    fn : callable
        Called with no arguments.
    repeat : int
        Maximum number of samples.
    budget : float
        Seconds: stop taking samples once this much time has been spent on
        them (at least one sample is always taken).

    Returns
    -------
    dict
        ``median_s`` and ``best_s`` per call, ``samples`` taken, ``number``
        of calls per sample, ``busy``: the share of the machine's cores
        that other processes used during the warm-up calls and the samples
        (None where that is unknown; the warm-up is included because the
        operating system counts the machine's CPU time in 10 ms ticks: 7
        samples of a small call last only ~15 ms), and, over the samples
        only, ``sys_share``: the share of this process's CPU time spent in
        the operating system's kernel (page faults on freshly allocated
        memory; thread wake-ups, which dominate for small calls), and
        ``faults_per_call`` (both None where :mod:`resource` is missing).
    """
    fn()  # warm-up: JIT compilation is never timed
    cpu0 = _cpu_seconds()
    warm_up = time.perf_counter()
    while time.perf_counter() - warm_up < WARMUP_FRACTION * budget:
        fn()
    usage0 = _usage()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    number = 1 if first >= MIN_SAMPLE_S else math.ceil(MIN_SAMPLE_S / max(first, 1e-7))
    times = [first] if number == 1 else []
    while len(times) < repeat and (not times or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    usage1 = _usage()
    busy = _busy_share(cpu0, _cpu_seconds(), time.perf_counter() - warm_up)
    timing = {"median_s": statistics.median(times), "best_s": min(times),
              "samples": len(times), "number": number, "busy": busy,
              "sys_share": None, "faults_per_call": None}
    if usage0 is not None:
        (user0, sys0, faults0), (user1, sys1, faults1) = usage0, usage1
        cpu = (user1 - user0) + (sys1 - sys0)
        timing["sys_share"] = (sys1 - sys0) / cpu if cpu > 0 else 0.0
        timing["faults_per_call"] = (faults1 - faults0) / (len(times) * number)
    return timing


def _usage():
    """(user CPU-s, system CPU-s, page faults) of this process so far; None without resource."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt + r.ru_majflt


def measure_undisturbed(fn, repeat, budget):
    """:func:`measure`, repeated while other processes were busy (see ``BUSY_SHARE``).

    Returns the attempt with the lowest ``busy``, with ``attempts`` set to
    the number of measurements taken.
    """
    best = None
    for attempt in range(1, RETRIES + 2):
        timing = measure(fn, repeat, budget)
        if best is None or (timing["busy"] or 0.0) < (best["busy"] or 0.0):
            best = timing
        if timing["busy"] is None or timing["busy"] <= BUSY_SHARE:
            break
    return dict(best, attempts=attempt)


def _busy_share(cpu0, cpu1, wall):
    """Share of the machine's cores other processes used between two :func:`_cpu_seconds`."""
    (machine0, own0), (machine1, own1) = cpu0, cpu1
    if machine0 is None or wall <= 0:
        return None
    other = max(0.0, (machine1 - machine0) - (own1 - own0))
    return other / (wall * (os.cpu_count() or 1))


# --------------------------------------------------------------------------- embedding

#: ``(m, k, n)`` of the float32 matmul that the embedding check times: a
#: 3x3 layer with 64 channels on an 8x56x56 batch, as im2col computes it.
EMBED_MATMUL = (64, 576, 25088)

#: The convolution the embedding check runs before each matmul (a small,
#: 0.2 ms call: the NumPy call after it starts while fastconv's threads
#: would still be spinning).
EMBED_CASE = "lenet_conv2"


def matmul_gflops(before=None, samples=15):
    """Median GFLOP/s of the :data:`EMBED_MATMUL` float32 matmul.

    ``before()``, if given, runs untimed right before each sample.
    """
    m, k, n = EMBED_MATMUL
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(samples):
        if before is not None:
            before()
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(times) / 1e9


#: Child processes per kind in the embedding check: on this 2-core VM one
#: process's matmul median moved between 92, 135 and 155 GFLOP/s from run
#: to run, whether or not fastconv had run in it.
EMBED_PROCESSES = 5


def matmul_worker(kind):
    """Child process side of :func:`embedding`: print the matmul's GFLOP/s.

    ``kind`` is ``"fresh"`` (fastconv imported, nothing called) or
    ``"after"`` (a :data:`EMBED_CASE` forward right before each sample).
    """
    before = None
    if kind == "after":
        import fastconv

        case = next(c for c in _suite.CONV_CASES if c.id == EMBED_CASE)
        x, w, _ = case.arrays("float32")

        def before():
            fastconv.conv2d(x, w, **case.kwargs)
    print(matmul_gflops(before))


def embedding(threads):
    """NumPy's matmul speed in processes that never ran fastconv, and right after it.

    Both kinds run in child processes with ``threads`` BLAS and Numba
    threads, alternately, :data:`EMBED_PROCESSES` of each.

    Returns
    -------
    dict
        ``fresh_gflops`` and ``after_gflops``: the median over processes.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    results = {"fresh": [], "after": []}
    for _ in range(EMBED_PROCESSES):
        for kind, speeds in results.items():
            proc = subprocess.run([sys.executable, "-m", "fastconv._bench", "--matmul-worker",
                                   kind], capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"matmul worker failed:\n{proc.stderr[-2000:]}")
            speeds.append(float(proc.stdout.split()[-1]))
    return {f"{kind}_gflops": statistics.median(v) for kind, v in results.items()}


# --------------------------------------------------------------------------- jobs


def _jobs(conv_cases, pool_cases, example, dtypes, passes):
    """(kind, case, dtype, pass) for every measurement, in table order."""
    jobs = []
    for dtype in dtypes:
        for pass_ in passes:
            if pass_ in _suite.CONV_PASSES:
                jobs += [("conv", c, dtype, pass_) for c in conv_cases]
            else:
                jobs += [("pool", c, dtype, pass_) for c in pool_cases]
        if example is not None and "forward" in passes:
            jobs.append(("example", example, dtype, "forward"))
    return jobs


def _reference_estimate_s(case, pass_, dtype):
    """Expected duration of one :mod:`fastconv.reference` call, in seconds."""
    if pass_ in _suite.POOL_PASSES:
        return case.work(pass_, dtype) / REFERENCE_BYTES_PER_S[pass_]
    return case.flops / REFERENCE_FLOPS_PER_S + case.groups * REFERENCE_S_PER_GROUP


def _numpy_call(module, case, pass_, dtype, reuse_out=False):
    """A no-argument callable running ``pass_`` of ``case`` with ``module``'s functions.

    ``reuse_out`` (pooling, fastconv only): every call writes into the same
    ``out=`` arrays, allocated here.
    """
    if pass_ in _suite.POOL_PASSES:
        x, dy = case.arrays(dtype)
        if pass_ == "pool_forward":
            kw = case.kwargs
            if reuse_out:
                kw = dict(kw, out=tuple(np.empty_like(a) for a in module.max_pool2d(x, **kw)))
            return lambda: module.max_pool2d(x, **kw)
        _, idx = module.max_pool2d(x, **case.kwargs)
        kw = {"out": np.empty(case.input_shape, dtype)} if reuse_out else {}
        return lambda: module.max_pool2d_backward(dy, idx, case.input_shape, **kw)
    x, w, dy = case.arrays(dtype)
    kw = case.kwargs
    if pass_ == "forward":
        return lambda: module.conv2d(x, w, **kw)
    if pass_ == "grad_input":
        return lambda: module.conv2d_grad_input(case.input_shape, w, dy, **kw)
    return lambda: module.conv2d_grad_weight(x, case.weight_shape, dy, **kw)


def _torch_call(torch, case, pass_, dtype):
    """The PyTorch equivalent of :func:`_numpy_call` (run under ``inference_mode``)."""
    F = torch.nn.functional
    if pass_ in _suite.POOL_PASSES:
        x, dy = (torch.from_numpy(a) for a in case.arrays(dtype))
        k, s, p = [case.kernel] * 2, [case.stride] * 2, [case.padding] * 2
        if pass_ == "pool_forward":
            return lambda: F.max_pool2d(x, k, s, p, return_indices=True)
        _, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        backward = torch.ops.aten.max_pool2d_with_indices_backward
        return lambda: backward(dy, x, k, s, p, [1, 1], False, idx)
    x, w, dy = (torch.from_numpy(a) for a in case.arrays(dtype))
    kw = case.kwargs
    if pass_ == "forward":
        return lambda: F.conv2d(x, w, None, **kw)
    if pass_ == "grad_input":
        return lambda: torch.nn.grad.conv2d_input(case.input_shape, w, dy, **kw)
    return lambda: torch.nn.grad.conv2d_weight(x, case.weight_shape, dy, **kw)


def _case_from(kind, fields):
    return (_suite.PoolCase if kind == "pool" else _suite.ConvCase)(**fields)


# --------------------------------------------------------------------------- PyTorch


def torch_worker(stream_in=None, stream_out=None):
    """Subprocess side: time PyTorch calls, one job per line (JSON lines protocol).

    The first input line holds ``threads``, ``repeat`` and ``budget``; the
    worker answers with ``torch_version`` and ``threads``.  Each further
    line is a job ``{"kind", "case" (dataclass fields), "dtype", "pass"}``,
    answered with its timing (:func:`measure_undisturbed`) or ``{"error":
    ...}``.  It returns at the end of the input.
    """
    stream_in = stream_in or sys.stdin
    stream_out = stream_out or sys.stdout
    spec = json.loads(stream_in.readline())
    import torch

    torch.set_num_threads(spec["threads"])

    def answer(obj):
        stream_out.write(json.dumps(obj) + "\n")
        stream_out.flush()

    answer({"torch_version": torch.__version__, "threads": torch.get_num_threads()})
    with torch.inference_mode():
        for line in stream_in:
            job = json.loads(line)
            case = _case_from(job["kind"], job["case"])
            try:  # the call's tensors are freed before the next job
                answer(measure_undisturbed(_torch_call(torch, case, job["pass"], job["dtype"]),
                                           spec["repeat"], spec["budget"]))
            except Exception as exc:  # report it in the table, keep going
                answer({"error": f"{type(exc).__name__}: {exc}"})


class TorchWorker:
    """A child process that times PyTorch calls on request (:func:`torch_worker`).

    Parameters
    ----------
    threads, repeat, budget
        As for :func:`run`.
    malloc : str
        A key of :data:`TORCH_MALLOC`: the child's allocator settings.
    """

    def __init__(self, threads, repeat, budget, malloc="default"):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   **TORCH_MALLOC[malloc])
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "fastconv._bench", "--torch-worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        self._send({"threads": threads, "repeat": repeat, "budget": budget})
        self.version = self._receive()["torch_version"]

    def time(self, job):
        """The timing of one ``(kind, case, dtype, pass)`` job, as :func:`measure_undisturbed`."""
        kind, case, dtype, pass_ = job
        self._send({"kind": kind, "case": asdict(case), "dtype": dtype, "pass": pass_})
        return self._receive()

    def close(self):
        """End the child process."""
        if self._proc.stdin and not self._proc.stdin.closed:
            self._proc.stdin.close()
        self._proc.wait()
        self._stderr.close()

    def _send(self, obj):
        try:
            self._proc.stdin.write(json.dumps(obj) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            self._fail()

    def _receive(self):
        line = self._proc.stdout.readline()
        if not line:
            self._fail()
        return json.loads(line)

    def _fail(self):
        self._proc.kill()
        self._proc.wait()
        self._stderr.seek(0)
        raise RuntimeError(f"PyTorch worker failed:\n{self._stderr.read()[-2000:]}")


# --------------------------------------------------------------------------- running


def _pin_threads(threads):
    """Pin Numba (and BLAS, if threadpoolctl is installed); describe what was done."""
    import fastconv

    fastconv.set_num_threads(threads)  # not numba's: see fastconv._threads
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "unpinned (install threadpoolctl to pin)"
    threadpool_limits(limits=threads, user_api="blas")
    return str(threads)


def _implementation(impl):
    if impl in ("fastconv", "out="):
        import fastconv

        return fastconv
    if impl == "im2col":
        from . import _im2col

        return _im2col
    from . import reference

    return reference


def _wants(impl, kind, case, pass_, dtype):
    if impl == "im2col":
        return kind != "pool"
    if impl == "out=":
        return kind == "pool"
    if impl == "reference":
        return _reference_estimate_s(case, pass_, dtype) < REFERENCE_LIMIT_S
    return True


def _cpu_seconds():
    """(CPU-seconds used by the whole machine, by this process and its children).

    The machine's figure comes from /proc/stat (Linux); None elsewhere.
    """
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None, own
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own


def run(jobs, impls, threads, repeat, budget, rounds=1, log=sys.stderr, torch_malloc="default"):
    """Measure ``jobs`` with each of ``impls``, ``rounds`` times; return (records, metadata).

    Each round measures every job with every implementation; a record keeps
    the round with the lowest median (``"round"``, from 0).  ``torch_malloc``
    is the PyTorch worker's allocator setting (:data:`TORCH_MALLOC`).
    ``metadata["other_cpu_s"]`` is the CPU time other processes used while
    this ran: when it is large, the machine was shared and timings suffer.
    """
    machine0, own0 = _cpu_seconds()
    wall0 = time.perf_counter()
    meta = {"threads": threads, "repeat": repeat, "budget_s": budget, "rounds": rounds,
            "peak_gflops": _suite.PEAK_GFLOPS, "peak_gbps": _suite.PEAK_GBPS}
    timings = {}
    worker = TorchWorker(threads, repeat, budget, torch_malloc) if "torch" in impls else None
    try:
        if worker is not None:
            meta["torch_version"] = worker.version
            meta["torch_malloc"] = torch_malloc
        meta["blas_threads"] = _pin_threads(threads)
        order = [impl for impl in MEASURE_ORDER if impl in impls]
        modules = {impl: _implementation(impl) for impl in order if impl != "torch"}
        for round_ in range(rounds):
            print(f"round {round_ + 1} of {rounds}: {len(jobs)} measurements, each with "
                  f"{', '.join(order)} in turn ...", file=log, flush=True)
            for i, job in enumerate(jobs):
                kind, case, dtype, pass_ = job
                for impl in order:
                    if impl == "torch":
                        timing = worker.time(job)
                    elif not _wants(impl, kind, case, pass_, dtype):
                        continue
                    else:
                        try:  # the call's arrays are freed before the next measurement
                            timing = measure_undisturbed(
                                _numpy_call(modules[impl], case, pass_, dtype,
                                            reuse_out=impl == "out="), repeat, budget)
                        except Exception as exc:  # report it in the table, keep going
                            timing = {"error": f"{type(exc).__name__}: {exc}"}
                    _keep_faster(timings, (impl, i), dict(timing, round=round_))
    finally:
        if worker is not None:
            worker.close()
    machine1, own1 = _cpu_seconds()
    meta["elapsed_s"] = time.perf_counter() - wall0
    if machine0 is not None:
        meta["other_cpu_s"] = max(0.0, (machine1 - machine0) - (own1 - own0))
    import numba

    try:
        meta["numba_threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        meta["numba_threading_layer"] = "?"
    records = []
    for (impl, i), t in sorted(timings.items(), key=lambda kv: (kv[0][1], IMPLS.index(kv[0][0]))):
        kind, case, dtype, pass_ = jobs[i]
        records.append(_record(impl, kind, case, dtype, pass_, t))
    return records, meta


def _keep_faster(timings, key, timing):
    """Keep ``timing`` at ``key`` unless the one there has a lower median (errors lose)."""
    old = timings.get(key)
    if old is None or "median_s" not in old or (
            "median_s" in timing and timing["median_s"] < old["median_s"]):
        timings[key] = timing


def _record(impl, kind, case, dtype, pass_, timing):
    rec = {"impl": impl, "kind": kind, "case": case.id, "geometry": case.describe(),
           "dtype": dtype, "pass": pass_, **timing}
    if "median_s" in timing:
        work = case.work(pass_, dtype)
        if kind == "pool":
            rec["gbps"] = work / timing["median_s"] / 1e9
            rec["pct_peak"] = 100 * rec["gbps"] / _suite.PEAK_GBPS
        else:
            rec["gflops"] = work / timing["median_s"] / 1e9
            rec["pct_peak"] = 100 * rec["gflops"] / _suite.PEAK_GFLOPS[dtype]
    return rec


# --------------------------------------------------------------------------- report


def _fmt_time(t):
    """``'45.2 ms'``, ``'3.15 us'``, ``'1.20 s'``; ``'-'`` for a missing time."""
    if t is None:
        return "-"
    scale, unit = (1.0, "s") if t >= 1 else (1e-3, "ms") if t >= 1e-3 else (1e-6, "us")
    v = t / scale
    return f"{v:.{2 if v < 10 else 1 if v < 100 else 0}f} {unit}"


def _fmt_ratio(other, fast):
    return "-" if other is None or fast is None else f"{other / fast:.2f}"


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _index(records):
    """``{(case, dtype, pass): {impl: median_s}}`` over the records that succeeded."""
    table = {}
    for r in records:
        if "median_s" in r:
            table.setdefault((r["case"], r["dtype"], r["pass"]), {})[r["impl"]] = r["median_s"]
    return table


def summarise(records):
    """Geometric-mean speed-ups per (pass, dtype) and the im2col acceptance check.

    Returns
    -------
    list of dict
        One per (pass, dtype), with ``geomean_x_<impl>`` (the geometric mean
        over shapes of impl's time / fastconv's time) for each other impl,
        and for im2col also ``min_x_im2col``, ``slowest_vs_im2col`` (the
        shape of that minimum) and ``wins_vs_im2col`` ("won/total").  The
        worked example is left out.
    """
    times = _index(r for r in records if r["kind"] != "example")
    rows = []
    for pass_ in _suite.PASSES:
        for dtype in _suite.DTYPES:
            cells = {c: t for (c, d, p), t in times.items()
                     if (d, p) == (dtype, pass_) and "fastconv" in t}
            if not cells:
                continue
            row = {"pass": pass_, "dtype": dtype}
            for impl in COMPARED:
                ratios = {c: t[impl] / t["fastconv"] for c, t in cells.items() if impl in t}
                if not ratios:
                    continue
                row[f"geomean_x_{impl}"] = _geomean(list(ratios.values()))
                if impl == "im2col":
                    worst = min(ratios, key=ratios.get)
                    won = sum(v > 1 for v in ratios.values())
                    row.update(min_x_im2col=ratios[worst], slowest_vs_im2col=worst,
                               wins_vs_im2col=f"{won}/{len(ratios)}")
            rows.append(row)
    return rows


def _line(cells, widths, left=(0, 1)):
    """Join cells into fixed-width columns, right-aligned except those in ``left``."""
    return "".join(f"{c:<{w}}" if i in left else f"{c:>{w}}"
                   for i, (c, w) in enumerate(zip(cells, widths)))


def _section(dtype, pass_, cases, times, rates, disturbed, torch_sys):
    """Table lines of one (dtype, pass): one row per case.

    Pool sections add fastconv's ``out=`` time and its % of peak after
    fastconv's own columns.  Times in ``disturbed`` (keys ``(case, dtype,
    pass, impl)``) are marked ``!``.  ``torch_sys`` maps ``(case, dtype,
    pass)`` to PyTorch's ``sys_share``, shown after its ratio.
    """
    def cell(case, impl):
        mark = "!" if (case, dtype, pass_, impl) in disturbed else ""
        return _fmt_time(times.get((case, dtype, pass_), {}).get(impl)) + mark

    pool = pass_ in _suite.POOL_PASSES
    others = ("torch", "reference") if pool else ("im2col", "torch", "reference")
    if pool:
        peak, unit = f"{_suite.PEAK_GBPS:g} GB/s DRAM", "GB/s"
    else:
        peak, unit = f"{_suite.PEAK_GFLOPS[dtype]:g} GFLOP/s", "GFLOP/s"
    head = ["shape", "geometry", "fastconv", unit, "%peak"] + (["out=", "%peak"] if pool else [])
    for impl in others:
        head += [impl, "x " + impl[:3] if impl == "reference" else "x " + impl]
        head += ["sys%"] if impl == "torch" else []
    widths = [20, 26, 10, 9, 7] + ([10, 7] if pool else []) + [10, 10] * len(others)
    widths.insert(head.index("sys%"), 6)
    lines = ["", f"== {pass_}, {dtype} (peak {peak}) ==", _line(head, widths)]
    for case, geometry in cases.items():
        t = times.get((case, dtype, pass_), {})
        fast = t.get("fastconv")
        rate, pct = rates.get((case, dtype, pass_, "fastconv"), (None, None))
        row = [case, geometry, cell(case, "fastconv"),
               "-" if rate is None else f"{rate:.1f}", "-" if pct is None else f"{pct:.1f}%"]
        if pool:
            _, pct = rates.get((case, dtype, pass_, "out="), (None, None))
            row += [cell(case, "out="), "-" if pct is None else f"{pct:.1f}%"]
        for impl in others:
            row += [cell(case, impl), _fmt_ratio(t.get(impl), fast)]
            if impl == "torch":
                share = torch_sys.get((case, dtype, pass_))
                row.append("-" if share is None else f"{100 * share:.0f}")
        lines.append(_line(row, widths))
    return lines


def format_table(records, summary, meta):
    """The report printed by ``fastconv bench``, as one string."""
    times = _index(records)
    rates = {(r["case"], r["dtype"], r["pass"], r["impl"]): (r.get("gbps", r.get("gflops")),
                                                             r["pct_peak"])
             for r in records if r["impl"] in ("fastconv", "out=") and "median_s" in r}
    sections = {}
    for r in records:
        if r["kind"] != "example":
            sections.setdefault((r["dtype"], r["pass"]), {})[r["case"]] = r["geometry"]
    disturbed = {(r["case"], r["dtype"], r["pass"], r["impl"]) for r in records
                 if (r.get("busy") or 0.0) > BUSY_SHARE}
    torch_sys = {(r["case"], r["dtype"], r["pass"]): r.get("sys_share") for r in records
                 if r["impl"] == "torch"}
    lines = _header(meta, records)
    for (dtype, pass_), cases in sections.items():
        lines += _section(dtype, pass_, cases, times, rates, disturbed, torch_sys)
    lines += _example_lines(records, times)
    lines += _embedding_lines(meta)
    lines += _summary_lines(summary)
    errors = [r for r in records if "error" in r]
    lines += [f"error: {r['impl']} {r['pass']} {r['case']} {r['dtype']}: {r['error']}"
              for r in errors]
    return "\n".join(lines)


def _header(meta, records):
    retaken = sum(r.get("attempts", 1) > 1 for r in records)
    disturbed = sum((r.get("busy") or 0.0) > BUSY_SHARE for r in records)
    return [
        f"fastconv {meta['fastconv_version']} | numba {meta['numba_version']} "
        f"({meta['numba_threading_layer']} threading layer) | numpy {meta['numpy_version']} | "
        f"torch {meta.get('torch_version', 'not measured')} (separate process)",
        f"CPU: {meta['cpu']} | threads: {meta['threads']} (numba, torch), "
        f"BLAS: {meta['blas_threads']}",
        f"median of up to {meta['repeat']} samples per measurement "
        f"({meta['budget_s']:g} s budget), after warm-up calls for "
        f"{WARMUP_FRACTION * meta['budget_s']:g} s; the lower of {meta.get('rounds', 1)} "
        "rounds, each measuring every shape with every implementation in turn",
        _load_line(meta),
        (f"{retaken} measurements taken again because other processes kept more than "
         f"{100 * BUSY_SHARE:.0f}% of the cores busy; {disturbed} still were (times marked !)"),
        "'x impl' = impl's median time / fastconv's: > 1 means fastconv is faster.",
        *([_torch_malloc_line(meta)] if "torch_version" in meta else []),
        "reference = fastconv.reference (computes in float64 whatever the input dtype), "
        "only where a call takes < ~1 s.",
    ]


def _torch_malloc_line(meta):
    if meta.get("torch_malloc", "default") == "default":
        how = "glibc's defaults: large buffers freed go back to the operating system"
    else:
        how = ("glibc keeps freed memory for reuse (--torch-malloc reuse: "
               + ", ".join(f"{k}={v}" for k, v in TORCH_MALLOC[meta["torch_malloc"]].items())
               + ")")
    return (f"sys% = share of PyTorch's CPU time spent in the kernel (page faults on memory "
            f"it allocates per call; thread wake-ups); its allocator: {how}")


def _load_line(meta):
    other = meta.get("other_cpu_s")
    if other is None:
        return "other processes' CPU use during the run: unknown"
    share = other / (meta["elapsed_s"] * (os.cpu_count() or 1))
    warning = "  WARNING: machine shared, timings unreliable" if share > 0.05 else ""
    return (f"other processes used {other:.0f} CPU-s during the {meta['elapsed_s']:.0f} s run "
            f"({100 * share:.0f}% of the machine){warning}")


def _example_lines(records, times):
    rows = [r for r in records if r["kind"] == "example" and r["impl"] == "fastconv"
            and "median_s" in r]
    if not rows:
        return []
    lines = ["", "== worked example: conv2d call latency, 1x1x3x3 input, 1x1x2x2 filter =="]
    for r in rows:
        t = times[(r["case"], r["dtype"], r["pass"])]
        cells = [f"{impl} {_fmt_time(t.get(impl))} (x {_fmt_ratio(t.get(impl), t['fastconv'])})"
                 for impl in COMPARED if impl in t]
        lines.append(f"{r['dtype']:<9} fastconv {_fmt_time(t['fastconv'])} | " + " | ".join(cells))
    return lines


def _embedding_lines(meta):
    emb = meta.get("embedding")
    if emb is None:
        return []
    m, k, n = EMBED_MATMUL
    head = (f"== embedding: NumPy float32 matmul {m}x{k} @ {k}x{n} "
            f"(BLAS and Numba threads: {meta['threads']}) ==")
    share = 100 * emb["after_gflops"] / emb["fresh_gflops"]
    body = (f"in processes that never ran fastconv {emb['fresh_gflops']:.0f} GFLOP/s | "
            f"right after each fastconv {EMBED_CASE} forward {emb['after_gflops']:.0f} GFLOP/s "
            f"({share:.0f}%); medians of {EMBED_PROCESSES} processes each")
    return ["", head, body]


def _summary_lines(summary):
    widths = [15, 9, 10, 7, 28, 9, 9]
    lines = ["", "== geometric mean over shapes of (other time / fastconv time) ==",
             _line(["pass", "dtype", "x im2col", "wins", "  worst vs im2col", "x torch",
                    "x ref"], widths, left=(0, 1, 4))]
    for row in summary:
        def g(impl, row=row):
            v = row.get(f"geomean_x_{impl}")
            return "-" if v is None else f"{v:.2f}"

        worst = (f"  {row['min_x_im2col']:.2f} ({row['slowest_vs_im2col']})"
                 if "min_x_im2col" in row else "  -")
        lines.append(_line([row["pass"], row["dtype"], g("im2col"),
                            row.get("wins_vs_im2col", "-"), worst, g("torch"), g("reference")],
                           widths, left=(0, 1, 4)))
    return lines


def plot(records, path):
    """Bar chart of fastconv/im2col/torch/reference GFLOP/s (GB/s for pools) per shape.

    One panel per (pass, dtype); log scale; the dashed line marks the peak.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'fastconv[bench]'") from None
    panels = {}
    for r in records:
        if r["kind"] != "example" and "pct_peak" in r:
            panels.setdefault((r["pass"], r["dtype"]), []).append(r)
    passes = [p for p in _suite.PASSES if any(k[0] == p for k in panels)]
    dtypes = [d for d in _suite.DTYPES if any(k[1] == d for k in panels)]
    fig, axes = plt.subplots(len(passes), len(dtypes), squeeze=False,
                             figsize=(7 * len(dtypes), 3.2 * len(passes)))
    for (pass_, dtype), recs in panels.items():
        ax = axes[passes.index(pass_)][dtypes.index(dtype)]
        cases = list(dict.fromkeys(r["case"] for r in recs))
        impls = [i for i in IMPLS if any(r["impl"] == i for r in recs)]
        width = 0.8 / len(impls)
        pool = pass_ in _suite.POOL_PASSES
        for j, impl in enumerate(impls):
            vals = {r["case"]: r.get("gbps", r.get("gflops")) for r in recs if r["impl"] == impl}
            xs = [i + j * width for i, c in enumerate(cases) if c in vals]
            ax.bar(xs, [vals[c] for c in cases if c in vals], width, label=impl,
                   color=f"C{IMPLS.index(impl)}")
        ax.axhline(_suite.PEAK_GBPS if pool else _suite.PEAK_GFLOPS[dtype], ls="--", c="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))], cases,
                      rotation=35, ha="right", fontsize=7)
        ax.set_title(f"{pass_}, {dtype}", fontsize=9)
        ax.set_ylabel("GB/s" if pool else "GFLOP/s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI


def _parser():
    p = argparse.ArgumentParser(prog="fastconv bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numba, BLAS and torch (default: all cores)")
    p.add_argument("--shapes", nargs="+", metavar="SUBSTRING",
                   help="only cases whose id contains one of these")
    p.add_argument("--passes", nargs="+", choices=_suite.PASSES, default=list(_suite.PASSES))
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--torch-malloc", choices=tuple(TORCH_MALLOC), default="default",
                   help="PyTorch's allocator: glibc's defaults, or 'reuse' to keep freed "
                        "memory (no page faults on its per-call buffers)")
    p.add_argument("--no-reference", action="store_true", help="skip fastconv.reference")
    p.add_argument("--quick", action="store_true",
                   help="two tiny conv shapes and one pool, few repeats, no torch (smoke test)")
    p.add_argument("--repeat", type=int, default=None, help="max samples per measurement (7)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of sampling per measurement (1.0)")
    p.add_argument("--rounds", type=int, default=None,
                   help="measure everything this many times, keep each one's lowest median "
                        "(2; --quick: 1)")
    p.add_argument("--plot", metavar="FILE.png", help="draw GFLOP/s per shape (needs matplotlib)")
    p.add_argument("--json", metavar="FILE", help="save every measurement as JSON")
    p.add_argument("--memory", action="store_true",
                   help="instead of timing, report each call's peak extra memory "
                        "(fastconv and im2col; Linux)")
    return p


def _metadata(threads):
    import numba

    import fastconv

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"fastconv_version": fastconv.__version__, "numba_version": numba.__version__,
            "numpy_version": np.__version__, "python": platform.python_version(),
            "cpu": f"{cpu}, {os.cpu_count()} logical cores"}


def main(argv=None):
    """Entry point of ``python -m fastconv bench``; returns the exit status."""
    args = _parser().parse_args(argv)
    import numba

    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise SystemExit(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}")
    if args.quick:
        conv, pool, example = _suite.QUICK_CONV_CASES, _suite.QUICK_POOL_CASES, None
    else:
        conv, pool, example = _suite.CONV_CASES, _suite.POOL_CASES, _suite.EXAMPLE
    conv, pool = _suite.select(conv, args.shapes), _suite.select(pool, args.shapes)
    if example is not None and _suite.select([example], args.shapes) == ():
        example = None
    dtypes = _suite.DTYPES if args.dtype == "both" else (args.dtype,)
    jobs = _jobs(conv, pool, example, dtypes, args.passes)
    if not jobs:
        raise SystemExit("no benchmark matches --shapes/--passes")
    if args.memory:
        from . import _memory

        if not _memory.supported():
            raise SystemExit("--memory needs Linux's /proc/self/clear_refs and glibc")
        _pin_threads(threads)
        print("\n".join(_memory.report(jobs, ("fastconv", "im2col"))))
        return 0
    impls = set(IMPLS)
    if args.no_torch or args.quick or importlib.util.find_spec("torch") is None:
        impls.discard("torch")
    if args.no_reference:
        impls.discard("reference")
    repeat = args.repeat or (3 if args.quick else 7)
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 1.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else ROUNDS)
    if rounds < 1:
        raise SystemExit("--rounds must be at least 1")

    records, meta = run(jobs, impls, threads, repeat, budget, rounds,
                        torch_malloc=args.torch_malloc)
    if not args.quick and "forward" in args.passes:
        meta["embedding"] = embedding(threads)
    meta.update(_metadata(threads))
    summary = summarise(records)
    print(format_table(records, summary, meta))
    print(f"\ntotal time {meta['elapsed_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": records, "summary": summary}, f, indent=1)
    if args.plot:
        plot(records, args.plot)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--torch-worker"]:
        torch_worker()
    elif sys.argv[1:2] == ["--matmul-worker"]:
        matmul_worker(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1:]))
