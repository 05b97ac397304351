"""fastconv picks Numba's threading layer and spin policy without touching the user's environment."""

import os
import subprocess
import sys

import pytest

CODE = """
import os, sys, json
before = dict(os.environ)
import numpy as np, numba, fastconv
from fastconv.kernels import _threading
from numba.np.ufunc import parallel
started_at_import = parallel._is_initialized or _threading.STATUS is not None
# large enough for a parallel region (small calls run on the calling thread)
fastconv.conv2d(np.ones((2, 8, 16, 16)), np.ones((8, 8, 3, 3)))
print(json.dumps({"env_same": dict(os.environ) == before, "layer": numba.threading_layer(),
                  "status": _threading.STATUS, "started_at_import": started_at_import}))
"""


def _run(extra_env):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(extra_env)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                         check=True)
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_default_policy_prefers_omp_and_restores_environment():
    result = _run({})
    assert result["env_same"]
    assert not result["started_at_import"]  # fork after import must stay safe
    if "GOMP_SPINCOUNT" in result["status"]:
        assert result["layer"] == "omp"


@pytest.mark.parametrize("env", [{"NUMBA_THREADING_LAYER": "workqueue"}, {"OMP_WAIT_POLICY": "active"}])
def test_user_settings_are_kept(env):
    result = _run(env)
    assert result["env_same"]
    assert result["status"] == "user's threading settings kept"
    if "NUMBA_THREADING_LAYER" in env:
        assert result["layer"] == "workqueue"


def test_fork_after_import_is_safe():
    """Importing fastconv starts no OpenMP threads, so a forked child can use fastconv."""
    code = """
import os, numpy as np, fastconv
pid = os.fork()
if pid == 0:
    y = fastconv.conv2d(np.ones((2, 8, 16, 16)), np.ones((8, 8, 3, 3)))  # a parallel call
    os._exit(0 if float(y.sum()) == 2 * 8 * 14 * 14 * 72 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "0", out.stderr


def test_set_num_threads_before_the_first_call_keeps_the_policy():
    # numba.set_num_threads would start Numba's pool with libgomp's default spin
    code = """
import json, numba, numpy as np, fastconv
from fastconv.kernels import _threading
fastconv.set_num_threads(1)
threads = numba.get_num_threads()
fastconv.conv2d(np.ones((2, 8, 16, 16)), np.ones((8, 8, 3, 3)))
print(json.dumps({"status": _threading.STATUS, "threads": threads}))
"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    import json
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["threads"] == 1
    assert "already running" not in result["status"]


@pytest.mark.parametrize("n, error", [(0, ValueError), (10**6, ValueError), (1.5, TypeError),
                                      (True, TypeError)])
def test_set_num_threads_rejects_bad_counts(n, error):
    import fastconv

    with pytest.raises(error, match="n must"):
        fastconv.set_num_threads(n)
