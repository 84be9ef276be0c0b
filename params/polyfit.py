"""Polynomials of degree 1 to 12 on one data set, each fitted plainly and with a ridge penalty."""

from __future__ import annotations

from experiments.polyfit import DataParams, Params

DEGREES = [1, 2, 3, 5, 8, 12]
RIDGE = 0.01


def get_params() -> list[Params]:
    """One parameter set per degree, plus a ridge-regularised twin of each."""
    data = DataParams(n_points=30, noise=0.3, seed=7)
    plain = [Params(name=f"degree-{d}", degree=d, data=data) for d in DEGREES]
    ridge = [Params(name=f"degree-{d}-ridge", degree=d, ridge=RIDGE, data=data) for d in DEGREES]
    return plain + ridge
