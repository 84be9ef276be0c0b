"""Fit polynomials of several degrees to noisy data and compare their train/test error.

A small but complete curifactory experiment:

1. ``generate_data`` draws a noisy sample of a cubic (seeded, so it is reproducible)
   and splits it into train and test points;
2. ``fit_model`` fits one polynomial of the parameter set's degree, with optional
   ridge regularisation;
3. ``evaluate`` measures the root-mean-square error on both splits;
4. the aggregate ``compare_models`` puts every parameter set side by side in a
   table and two plots.

Run it from the project root with ``experiment polyfit -p polyfit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import curifactory as cf
from curifactory.caching import JsonCacher, PandasCsvCacher, PickleCacher
from curifactory.reporting import DFReporter, FigureReporter, JsonReporter, LinePlotReporter

# Coefficients of the true curve, highest power first (as numpy.polyval expects).
TRUE_COEFFICIENTS = [1.5, 0.0, -1.0, 0.3]


@dataclass
class DataParams:
    """How the data set is drawn. Nested inside :class:`Params`."""

    n_points: int = 30
    noise: float = 0.3
    test_fraction: float = 0.3
    seed: int = 7


@dataclass
class Params(cf.ExperimentParameters):
    """One model to fit: a polynomial degree, a ridge strength and the data to use."""

    degree: int = 1
    ridge: float = 0.0
    data: DataParams = field(default_factory=DataParams)


def _fit_polynomial(x: np.ndarray, y: np.ndarray, degree: int, ridge: float) -> np.ndarray:
    """Least-squares polynomial coefficients (highest power first).

    With ``ridge > 0`` the squared size of every coefficient but the constant term
    is penalised, which is solved as an ordinary least-squares problem with extra
    rows appended to the design matrix.
    """
    if ridge == 0:
        return np.polyfit(x, y, degree)
    design = np.vander(x, degree + 1)
    penalty = np.sqrt(ridge) * np.eye(degree + 1)
    penalty[-1, -1] = 0.0  # leave the constant term free
    stacked = np.vstack([design, penalty])
    target = np.concatenate([y, np.zeros(degree + 1)])
    coefficients, *_ = np.linalg.lstsq(stacked, target, rcond=None)
    return coefficients


def _variant(params: Params) -> str:
    return "plain" if params.ridge == 0 else f"ridge {params.ridge:g}"


@cf.stage(inputs=None, outputs=["dataset"], cachers=[PandasCsvCacher])
def generate_data(record: cf.Record) -> pd.DataFrame:
    """Draw ``n_points`` noisy samples of the true cubic and mark each train or test."""
    data = record.params.data
    rng = np.random.default_rng(data.seed)
    x = rng.uniform(-1.0, 1.0, data.n_points)
    y = np.polyval(TRUE_COEFFICIENTS, x) + rng.normal(0.0, data.noise, data.n_points)
    n_test = int(round(data.n_points * data.test_fraction))
    split = np.array(["train"] * data.n_points, dtype=object)
    split[rng.permutation(data.n_points)[:n_test]] = "test"
    return pd.DataFrame({"x": x, "y": y, "split": split})


@cf.stage(inputs=["dataset"], outputs=["model"], cachers=[PickleCacher])
def fit_model(record: cf.Record, dataset: pd.DataFrame) -> dict:
    """Fit the polynomial on the training points."""
    train = dataset[dataset["split"] == "train"]
    coefficients = _fit_polynomial(
        train["x"].to_numpy(), train["y"].to_numpy(), record.params.degree, record.params.ridge
    )
    return {"degree": record.params.degree, "ridge": record.params.ridge, "coefficients": coefficients}


@cf.stage(inputs=["dataset", "model"], outputs=["metrics"], cachers=[JsonCacher])
def evaluate(record: cf.Record, dataset: pd.DataFrame, model: dict) -> dict:
    """Root-mean-square error of the model on the train and the test points."""
    metrics: dict = {"degree": model["degree"], "ridge": model["ridge"]}
    for split in ("train", "test"):
        part = dataset[dataset["split"] == split]
        residuals = np.polyval(model["coefficients"], part["x"].to_numpy()) - part["y"].to_numpy()
        metrics[f"{split}_rmse"] = float(np.sqrt(np.mean(residuals**2)))
        metrics[f"n_{split}"] = int(len(part))
    # tracked with the run: `curifactory runs` and cf.load_runs() compare them across runs
    record.log_metrics({"train_rmse": metrics["train_rmse"], "test_rmse": metrics["test_rmse"]})
    record.set_tag("variant", _variant(record.params))
    return metrics


@cf.aggregate(inputs=["metrics", "model", "dataset"], outputs=["comparison"], cachers=[PandasCsvCacher])
def compare_models(
    record: cf.Record, records: list, metrics: dict, model: dict, dataset: dict
) -> pd.DataFrame:
    """Tabulate and plot the error of every model; report the best one.

    Each input is a dict from every aggregated record to its value of that output.
    """
    rows = []
    for rec, values in metrics.items():
        rows.append({"name": rec.params.name, "variant": _variant(rec.params), **values})
    table = pd.DataFrame(rows).set_index("name").sort_values(["variant", "degree"])
    record.report(DFReporter(table[["variant", "degree", "ridge", "train_rmse", "test_rmse"]],
                             name="errors of every model"))

    best_name = table["test_rmse"].idxmin()
    best = table.loc[best_name]
    record.report(JsonReporter({
        "name": best_name,
        "degree": int(best["degree"]),
        "ridge": float(best["ridge"]),
        "test_rmse": round(float(best["test_rmse"]), 4),
    }, name="best model (lowest test RMSE)"))

    # One line per variant and split over the degrees that every variant shares.
    degrees = sorted(set.intersection(*(set(group["degree"]) for _, group in table.groupby("variant"))))
    lines = {}
    for variant, group in table.groupby("variant"):
        by_degree = group.set_index("degree")
        for split in ("train", "test"):
            lines[f"{variant} ({split})"] = [float(by_degree.loc[d, f"{split}_rmse"]) for d in degrees]
    record.report(LinePlotReporter(
        lines, x=[int(d) for d in degrees], plot_kwargs={"marker": "o"}, name="RMSE by polynomial degree"
    ))

    record.report(FigureReporter(_plot_fits(model, dataset), name="fitted curves"))
    return table


def _plot_fits(models: dict, datasets: dict):
    """A figure of the data and the fitted curve of every record's model."""
    from matplotlib.figure import Figure  # no pyplot: works without a display

    fig = Figure(figsize=(9, 3.8))
    variants = sorted({_variant(rec.params) for rec in models})
    axes = fig.subplots(1, len(variants), sharey=True, squeeze=False)[0]
    grid = np.linspace(-1.0, 1.0, 200)
    for ax, variant in zip(axes, variants):
        recs = sorted((r for r in models if _variant(r.params) == variant), key=lambda r: r.params.degree)
        points = datasets[recs[0]]
        for split, marker in (("train", "o"), ("test", "x")):
            part = points[points["split"] == split]
            ax.scatter(part["x"], part["y"], marker=marker, color="grey", s=14, label=f"{split} points")
        ax.plot(grid, np.polyval(TRUE_COEFFICIENTS, grid), color="black", linestyle="--", label="true curve")
        for rec in recs:
            ax.plot(grid, np.polyval(models[rec]["coefficients"], grid), label=f"degree {rec.params.degree}")
        ax.set_title(variant)
        ax.set_ylim(points["y"].min() - 0.5, points["y"].max() + 0.5)
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def run(param_sets: list[Params], manager: cf.ArtifactManager) -> pd.DataFrame:
    """Fit and evaluate one model per parameter set, then compare them all."""
    records = []
    for param_set in param_sets:
        record = cf.Record(manager, param_set)
        record = generate_data(record)
        record = fit_model(record)
        record = evaluate(record)
        records.append(record)

    summary = cf.Record(manager, None)
    summary = compare_models(summary, records)
    return summary.output
