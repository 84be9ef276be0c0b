"""Experiments of the bundled example project (run one with `experiment NAME`)."""
