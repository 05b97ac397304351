"""The benchmark harness: its shape suite, its im2col baseline and ``fastconv bench --quick``."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from fastconv import _bench, _im2col, _memory, _suite
from fastconv import reference as ref
from fastconv._suite import ConvCase

SMALL = [
    ConvCase("worked_example", 1, 1, 3, 3, 1, 2, 2),
    ConvCase("plain", 2, 3, 9, 8, 4, 3, 3),
    ConvCase("padded", 2, 3, 7, 7, 5, 3, 3, padding=1),
    ConvCase("strided", 2, 4, 11, 10, 3, 3, 2, stride=2, padding=1),
    ConvCase("dilated", 1, 2, 12, 12, 3, 3, 3, padding=2, dilation=2),
    ConvCase("grouped", 2, 8, 9, 9, 6, 3, 3, stride=2, padding=1, groups=2),
    ConvCase("depthwise", 2, 6, 8, 8, 6, 3, 3, padding=1, groups=6),
    ConvCase("pointwise_s2", 2, 5, 8, 8, 7, 1, 1, stride=2),
    ConvCase("window_larger_than_stride", 1, 3, 10, 10, 2, 5, 5, stride=3, padding=2),
]


def _atol(n_terms, dtype):
    # uniform [-1, 1] inputs: a sum of n products errs by at most n * eps.
    return 4.0 * n_terms * float(np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL, ids=lambda c: c.id)
def test_im2col_matches_reference(case, dtype):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, case.input_shape).astype(dtype)
    w = rng.uniform(-1, 1, case.weight_shape).astype(dtype)
    dy = rng.uniform(-1, 1, case.output_shape).astype(dtype)
    Cg, Kg = case.C // case.groups, case.K // case.groups
    checks = [
        (_im2col.conv2d(x, w, **case.kwargs), ref.conv2d(x, w, **case.kwargs),
         Cg * case.R * case.S),
        (_im2col.conv2d_grad_input(case.input_shape, w, dy, **case.kwargs),
         ref.conv2d_grad_input(case.input_shape, w, dy, **case.kwargs), Kg * case.R * case.S),
        (_im2col.conv2d_grad_weight(x, case.weight_shape, dy, **case.kwargs),
         ref.conv2d_grad_weight(x, case.weight_shape, dy, **case.kwargs),
         case.N * case.P * case.Q),
    ]
    for got, want, n_terms in checks:
        assert got.dtype == dtype  # same-dtype baseline, unlike the float64 reference
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=_atol(n_terms, dtype))


def test_suite_ids_are_unique_and_readable():
    cases = _suite.CONV_CASES + _suite.POOL_CASES + (_suite.EXAMPLE,)
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids)
    assert all(i.isidentifier() and i.islower() for i in ids)


@pytest.mark.parametrize("case", _suite.CONV_CASES + (_suite.EXAMPLE,), ids=lambda c: c.id)
def test_conv_case_geometry_and_flops(case):
    # One image and one filter per group: cheap, and the same P x Q.
    small = ConvCase(case.id, 1, case.groups, case.H, case.W, case.groups, case.R, case.S,
                     case.stride, case.padding, case.dilation, case.groups)
    y = ref.conv2d(np.zeros(small.input_shape), np.zeros(small.weight_shape), **small.kwargs)
    assert y.shape[2:] == (case.P, case.Q)
    macs = np.prod(case.output_shape) * (case.C // case.groups) * case.R * case.S
    assert case.flops == 2 * macs


@pytest.mark.parametrize("case", _suite.POOL_CASES, ids=lambda c: c.id)
def test_pool_case_geometry(case):
    out, _ = ref.max_pool2d(np.zeros((1, 1, case.H, case.W)), **case.kwargs)
    assert out.shape[2:] == (case.P, case.Q)


def test_bench_quick_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "fastconv", "bench", "--quick", "--json",
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "geometric mean" in proc.stdout
    data = json.loads(path.read_text())
    assert data["meta"]["threads"] >= 1
    results = data["results"]
    assert {r["impl"] for r in results} == {"fastconv", "im2col", "reference", "out="}
    assert {r["pass"] for r in results if r["impl"] == "out="} == set(_suite.POOL_PASSES)
    assert {r["pass"] for r in results} == set(_suite.PASSES)
    assert {r["dtype"] for r in results} == set(_suite.DTYPES)
    assert all(r["median_s"] > 0 and r["pct_peak"] > 0 for r in results)
    assert {(s["pass"], s["dtype"]) for s in data["summary"]} == {
        (p, d) for p in _suite.PASSES for d in _suite.DTYPES}


@pytest.mark.skipif(not _memory.supported(), reason="needs Linux /proc/self/clear_refs and glibc")
def test_peak_extra_bytes_sees_temporaries_not_outputs():
    mb = 10_000_000

    def temporary():
        return float(np.ones(mb // 8).sum())

    def output():
        return np.ones(mb // 8)

    temporary(), output()
    assert abs(_memory.peak_extra_bytes(temporary) - mb) < 0.5e6
    assert abs(_memory.peak_extra_bytes(output)) < 0.5e6


@pytest.mark.skipif(not _memory.supported(), reason="needs Linux /proc/self/clear_refs and glibc")
def test_peak_extra_bytes_of_a_recycled_result_is_not_negative(monkeypatch):
    # a result in memory recycled from an earlier one would not raise the
    # peak, and the report would subtract its size: the store is emptied first
    from fastconv import _results

    monkeypatch.setattr(_results, "MIN_BYTES", 1 << 20)
    mb = 10_000_000

    def output():
        result = _results.empty((mb // 8,), np.dtype(np.float64))
        result.fill(1.0)  # as a kernel writes its result
        return result

    output()  # its block is kept for the next call
    assert _results.kept_bytes() == mb
    assert abs(_memory.peak_extra_bytes(output)) < 0.5e6
    _results.release_memory()


@pytest.mark.skipif(not _memory.supported(), reason="needs Linux /proc/self/clear_refs and glibc")
def test_bench_memory_report():
    proc = subprocess.run([sys.executable, "-m", "fastconv", "bench", "--quick", "--memory",
                           "--dtype", "float32"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("quick_")]
    # every quick case and pass, fastconv's extra and im2col's (pools: none)
    assert len(rows) == 2 * 3 + 2
    assert all(r[4] == "MB" and r[6] == "MB" for r in rows)
    assert all(r[8] == "-" for r in rows if r[0] == "quick_pool")


def test_measure_times_the_steady_state_after_its_warm_up():
    # The first five calls are slow, as a fresh 100 MB result's page faults
    # are in a new process: the warm-up absorbs them, the samples never see them.
    durations = iter([0.03] * 5)

    def fn():
        time.sleep(next(durations, 0.001))

    timing = _bench.measure(fn, repeat=7, budget=1.0)
    assert next(durations, None) is None  # all five slow calls were made
    assert timing["median_s"] < 0.01


@pytest.mark.skipif(importlib.util.find_spec("resource") is None, reason="needs resource (Unix)")
def test_measure_counts_the_page_faults_and_kernel_time_of_its_samples():
    # 64 MiB is above glibc's largest dynamic mmap threshold (32 MiB): every
    # call gets fresh pages from the operating system and faults them in
    timing = _bench.measure(lambda: np.ones(1 << 23), repeat=3, budget=0.05)
    assert timing["faults_per_call"] >= 32  # one per page; NumPy asks for 2 MiB pages
    assert 0.0 < timing["sys_share"] <= 1.0
    quiet = _bench.measure(lambda: sum(range(1000)), repeat=3, budget=0.05)
    assert quiet["faults_per_call"] < 1


def test_torch_malloc_reuse_reaches_only_the_torch_worker(monkeypatch):
    seen = {}

    class Refuse(Exception):
        pass

    def fake_popen(args, env, **kwargs):
        seen.update(env)
        raise Refuse

    monkeypatch.setattr(_bench.subprocess, "Popen", fake_popen)
    with pytest.raises(Refuse):
        _bench.TorchWorker(threads=1, repeat=1, budget=0.01, malloc="reuse")
    assert seen["MALLOC_MMAP_THRESHOLD_"] == seen["MALLOC_TRIM_THRESHOLD_"] == str(1 << 32)
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ
    seen.clear()
    with pytest.raises(Refuse):
        _bench.TorchWorker(threads=1, repeat=1, budget=0.01)
    assert "MALLOC_MMAP_THRESHOLD_" not in seen


def test_the_table_shows_torchs_kernel_share_after_its_ratio():
    case = _suite.QUICK_CONV_CASES[0]
    records = [_bench._record(impl, "conv", case, "float64", "forward",
                              {"median_s": t, "busy": 0.0, "sys_share": share})
               for impl, t, share in (("fastconv", 1e-3, 0.0), ("torch", 3e-3, 0.583))]
    meta = {"fastconv_version": "x", "numba_version": "x", "numba_threading_layer": "omp",
            "numpy_version": "x", "cpu": "x", "threads": 2, "blas_threads": "2",
            "repeat": 7, "budget_s": 1.0, "torch_version": "x", "torch_malloc": "reuse"}
    lines = _bench.format_table(records, _bench.summarise(records), meta).splitlines()
    head = next(line for line in lines if line.startswith("shape"))
    row = next(line for line in lines if line.startswith(case.id))
    assert "x torch  sys%" in head
    assert row.split()[-4:] == ["3.00", "58", "-", "-"]
    assert any("MALLOC_MMAP_THRESHOLD_=4294967296" in line for line in lines)


def test_busy_share_is_other_processes_cpu_time_per_core_second():
    cores = os.cpu_count()
    # the machine used 3 CPU-s more, this process 1 of them, over 2 s
    assert _bench._busy_share((10.0, 5.0), (13.0, 6.0), 2.0) == pytest.approx(1.0 / cores)
    assert _bench._busy_share((10.0, 5.0), (10.5, 6.0), 2.0) == 0.0  # clock granularity
    assert _bench._busy_share((None, 5.0), (None, 6.0), 2.0) is None


@pytest.mark.parametrize("shares, attempts, kept", [
    ([0.0], 1, 0.0),
    ([None], 1, None),  # unknown (not Linux): nothing to retry for
    ([0.9, 0.05], 2, 0.05),
    ([0.9, 0.3, 0.5, 0.0], 3, 0.3),  # gives up after RETRIES, keeps the least disturbed
])
def test_a_measurement_disturbed_by_other_processes_is_taken_again(
        monkeypatch, shares, attempts, kept):
    assert _bench.RETRIES == 2 and _bench.BUSY_SHARE == 0.1
    calls = iter(shares)
    monkeypatch.setattr(_bench, "_busy_share", lambda *args: next(calls))
    timing = _bench.measure_undisturbed(lambda: None, repeat=3, budget=0.01)
    assert timing["attempts"] == attempts
    assert timing["busy"] == kept


def test_the_table_marks_times_other_processes_disturbed():
    case = _suite.QUICK_CONV_CASES[0]
    records = [_bench._record(impl, "conv", case, "float32", "forward",
                              {"median_s": 1e-3, "busy": busy, "attempts": 3 if busy else 1})
               for impl, busy in (("fastconv", 0.4), ("im2col", 0.0))]
    meta = {"fastconv_version": "x", "numba_version": "x", "numba_threading_layer": "omp",
            "numpy_version": "x", "cpu": "x", "threads": 2, "blas_threads": "2",
            "repeat": 7, "budget_s": 1.0}
    table = _bench.format_table(records, _bench.summarise(records), meta)
    row = next(line for line in table.splitlines() if line.startswith(case.id))
    assert "1.00 ms!" in row and row.count("!") == 1
    assert "1 measurements taken again" in table and "1 still were" in table


def test_each_shape_is_measured_with_every_implementation_before_the_next(monkeypatch):
    measured = []

    class FakeWorker:
        version = "fake"

        def __init__(self, threads, repeat, budget, malloc):
            assert malloc == "default"

        def time(self, job):
            measured.append(("torch", job[1].id, job[3]))
            return {"median_s": 1e-3, "busy": 0.0, "attempts": 1}

        def close(self):
            measured.append("closed")

    def fake_call(module, case, pass_, dtype, reuse_out=False):
        impl = "out=" if reuse_out else module.__name__.rsplit(".", 1)[-1]
        return lambda: measured.append((impl, case.id, pass_))

    monkeypatch.setattr(_bench, "TorchWorker", FakeWorker)
    monkeypatch.setattr(_bench, "_numpy_call", fake_call)
    monkeypatch.setattr(_bench, "measure_undisturbed",
                        lambda fn, repeat, budget: fn() or {"median_s": 1e-3, "busy": 0.0})
    jobs = _bench._jobs(_suite.QUICK_CONV_CASES, _suite.QUICK_POOL_CASES, None, ("float32",),
                        ("forward", "pool_forward"))
    records, meta = _bench.run(jobs, set(_bench.IMPLS), threads=1, repeat=1, budget=0.01,
                               log=open(os.devnull, "w"))
    assert meta["torch_version"] == "fake" and measured[-1] == "closed"
    conv, pool = _suite.QUICK_CONV_CASES[0].id, _suite.QUICK_POOL_CASES[0].id
    assert measured[:4] == [("fastconv", conv, "forward"), ("torch", conv, "forward"),
                            ("_im2col", conv, "forward"), ("reference", conv, "forward")]
    assert measured[-5:-1] == [("fastconv", pool, "pool_forward"),
                               ("out=", pool, "pool_forward"), ("torch", pool, "pool_forward"),
                               ("reference", pool, "pool_forward")]
    assert len(records) == len(measured) - 1


def test_each_measurement_keeps_its_fastest_round(monkeypatch):
    medians = iter([3e-3, 1e-3, 2e-3, 5e-3])  # fastconv, reference; then round 2

    def fake_measure(fn, repeat, budget):
        return {"median_s": next(medians), "busy": 0.0, "attempts": 1}

    monkeypatch.setattr(_bench, "measure_undisturbed", fake_measure)
    jobs = _bench._jobs(_suite.QUICK_CONV_CASES, (), None, ("float32",), ("forward",))[:1]
    records, meta = _bench.run(jobs, {"fastconv", "reference"}, threads=1, repeat=1,
                               budget=0.01, rounds=2, log=open(os.devnull, "w"))
    kept = {r["impl"]: (r["median_s"], r["round"]) for r in records}
    assert kept == {"fastconv": (2e-3, 1), "reference": (1e-3, 0)}
    assert meta["rounds"] == 2


def test_bench_rejects_zero_rounds():
    with pytest.raises(SystemExit):
        _bench.main(["--quick", "--rounds", "0"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_torch_worker_answers_one_job_per_line():
    worker = _bench.TorchWorker(threads=1, repeat=1, budget=0.01)
    try:
        job = ("conv", _suite.QUICK_CONV_CASES[0], "float64", "grad_weight")
        first, second = worker.time(job), worker.time(job)
    finally:
        worker.close()
    assert worker.version.startswith("2.")
    assert first["median_s"] > 0 and second["median_s"] > 0 and "error" not in second


def test_embedding_check_times_matmuls_in_child_processes(monkeypatch):
    monkeypatch.setattr(_bench, "EMBED_PROCESSES", 1)
    emb = _bench.embedding(threads=1)
    assert set(emb) == {"fresh_gflops", "after_gflops"}
    assert all(v > 0 for v in emb.values())
    meta = {"embedding": emb, "threads": 1}
    line = _bench._embedding_lines(meta)[-1]
    assert "never ran fastconv" in line and "%" in line
