import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Bounded so the whole suite, JIT compilation included, stays within minutes on 2 cores.
settings.register_profile(
    "default", max_examples=100, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(os.environ.get("FASTCONV_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
