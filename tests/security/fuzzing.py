"""Hypothesis settings and strategies shared by the fuzz tests.

``FUZZ`` is the ``suite`` profile (a few dozen examples per property, for `make test`) unless
``AXISOR_FUZZ_PROFILE=fuzz`` (`make fuzz`: ``FUZZ_EXAMPLES`` examples per property, default 1000). It is applied per
test, so other packages' Hypothesis tests keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_COMMON = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    database=None,
)
_PROFILES = {
    "suite": settings(_COMMON, max_examples=int(os.environ.get("SUITE_EXAMPLES", "25"))),
    "fuzz": settings(_COMMON, max_examples=int(os.environ.get("FUZZ_EXAMPLES", "1000"))),
}
FUZZ = _PROFILES[os.environ.get("AXISOR_FUZZ_PROFILE", "suite")]

# What an attacker types: any text (no NUL: the test client and WSGI cannot carry it in a query string), digits of
# every script, huge numbers, and the classics.
NASTY = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "²",
        "١٢",
        "1" * 5000,
        "9" * 19,
        "1e309",
        "NaN",
        "inf",
        "-inf",
        "0x10",
        " 1",
        "1\n",
        "foo",
        "//evil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
        "\\\\evil",
        "%00",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "[" * 1000,
        "{{ 7*7 }}",
    ]
)
TEXT = st.one_of(NASTY, st.text(max_size=300), st.integers(min_value=-(2**80), max_value=2**80).map(str))
