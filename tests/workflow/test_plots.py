"""Plots: each figure is built, written as a valid PNG, and leaves no pyplot figure open.

The posterior here is synthetic (normal draws around the EM estimate, in the layout that
``sample_posterior`` returns), so these tests need no sampling.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_mlr import MixtureOfRegressions
from bayes_mlr.workflow import plots
from tests.conftest import TRUTH_3, make_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_posterior(model, chains=2, draws=60, seed=0):
    """Draws ~ N(EM, SE^2) shaped like sample_posterior's DataTree (with the em group)."""
    rng = np.random.default_rng(seed)
    se = model.standard_errors_
    names = model.feature_names
    K = model.coef_.shape[0]
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        "component": np.arange(K),
        "feature": names,
    }

    def draw(name):
        value, scale = getattr(model, f"{name}_"), np.nan_to_num(se[name])
        return value + scale * rng.normal(size=(chains, draws, *value.shape))

    post = {
        "weights": (("chain", "draw", "component"), draw("weights")),
        "intercept": (("chain", "draw", "component"), draw("intercept")),
        "coef": (("chain", "draw", "component", "feature"), draw("coef")),
    }
    if model.variance == "component":
        post["sigma"] = (("chain", "draw", "component"), draw("sigma"))
    elif model.variance == "shared":
        post["sigma"] = (("chain", "draw"), draw("sigma")[..., 0])
    em = {}
    dims = {
        "weights": ("component",),
        "intercept": ("component",),
        "coef": ("component", "feature"),
        "sigma": ("component",),
    }
    for name, d in dims.items():
        em[name] = (d, getattr(model, f"{name}_"))
        em[f"{name}_se"] = (d, se[name])
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(post, coords=coords),
            "em": xr.Dataset(em, coords={"component": np.arange(K), "feature": names}),
        }
    )


@pytest.fixture(scope="module")
def model1():
    data = make_data(300)
    return MixtureOfRegressions(2, random_state=0).fit(pd.DataFrame(data.X, columns=["x"]), data.y)


@pytest.fixture(scope="module")
def model3():
    data = make_data(600, TRUTH_3, seed=1)
    X = pd.DataFrame(np.column_stack([data.X, data.X[:, 0] ** 2]), columns=["a", "b", "a2"])
    return MixtureOfRegressions(3, variance="shared", random_state=0).fit(X, data.y)


@pytest.fixture(autouse=True)
def no_open_figures():
    yield
    assert plt.get_fignums() == []  # every function closes what pyplot opened
    plt.close("all")


def test_fit_plot_one_feature(model1, tmp_path):
    fig = plots.plot_fit(model1, fake_posterior(model1), response="price")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 1
    assert axes[0].get_xlabel() == "x" and axes[0].get_ylabel() == "price"
    # per component: EM line, posterior mean, two interval edges
    assert len(axes[0].lines) == 2 * 4
    assert len(axes[0].collections) >= 1 + 2  # points and the two EM bands
    path = plots.save_figure(fig, tmp_path / "fit.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_fit_plot_several_features_without_posterior(model3):
    fig = plots.plot_fit(model3)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["a", "b", "a2"]
    assert all("partial residual" in ax.get_ylabel() for ax in axes)
    assert all(len(ax.lines) == 3 for ax in axes)  # EM lines only


def test_fit_plot_colours_points_by_responsibility(model1):
    fig = plots.plot_fit(model1)
    points = fig.axes[0].collections[0]
    colors = points.get_facecolors()[:, :3]
    resp = model1.responsibilities(model1._fit_X, model1._fit_y)
    expected = resp @ plots._colors(2)
    np.testing.assert_allclose(colors, expected, atol=1e-6)


def test_fit_plot_subsamples_many_points(model1):
    fig = plots.plot_fit(model1, max_points=50)
    assert fig.axes[0].collections[0].get_offsets().shape[0] == 50


def test_log_likelihood_trace(model1):
    fig = plots.plot_log_likelihood_trace(model1)
    left, right = fig.axes
    np.testing.assert_array_equal(left.lines[0].get_ydata(), model1.log_likelihood_trace_)
    assert right.get_yscale() == "log"
    assert "converged" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="empty"):
        plots.plot_log_likelihood_trace(np.array([]))


@pytest.mark.parametrize("which", ["trace", "rank", "forest"])
def test_arviz_plots(model3, which, tmp_path):
    posterior = fake_posterior(model3)
    fig = getattr(plots, f"plot_{which}")(posterior)
    path = plots.save_figure(fig, tmp_path / f"{which}.png", dpi=50)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_forest_plot_needs_the_em_group(model1):
    posterior = fake_posterior(model1)
    del posterior["em"]
    with pytest.raises(ValueError, match="no 'em' group"):
        plots.plot_forest(posterior)


def test_forest_em_rows_are_the_estimates_and_standard_errors(model1):
    posterior = fake_posterior(model1, chains=4, draws=500)
    groups = {
        g.name + ("" if g.feature is None else f"/{g.feature}"): g
        for g in plots._groups(posterior["posterior"])
    }
    coef_group = next(g for key, g in groups.items() if key.startswith("coef"))
    value, se = plots._em_rows(posterior, coef_group, model1.n_components_)
    np.testing.assert_allclose(value, model1.coef_[:, 0], atol=1e-12)
    np.testing.assert_allclose(se, model1.standard_errors_["coef"][:, 0], rtol=1e-12)
    fig = plots.plot_forest(posterior)
    # one panel per parameter group, so sigma and small slopes keep their own scale
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) >= len(groups)


def test_write_plots(model1, tmp_path):
    written = plots.write_plots(tmp_path, model1, fake_posterior(model1), dpi=40)
    assert set(written) == set(plots.PLOT_FILES)
    for name, path in written.items():
        assert path.name == plots.PLOT_FILES[name]
        assert path.read_bytes().startswith(PNG_MAGIC)
        assert plt.imread(path).ndim == 3  # decodes as an image
    em_only = plots.write_plots(tmp_path / "em", model1, dpi=40)
    assert set(em_only) == {"fit", "em_trace"}


def test_plotting_modules_are_not_imported_by_the_package():
    import subprocess
    import sys

    code = (
        "import sys, bayes_mlr, bayes_mlr.workflow.plots, bayes_mlr.workflow.report, "
        "bayes_mlr.workflow.io, bayes_mlr.workflow.spec, bayes_mlr.workflow.cli, "
        "bayes_mlr.workflow.run\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'arviz_plots', 'matplotlib') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ppc_p_values_are_those_of_the_replicates(model1):
    # P(T(y_rep) >= T(y)) per statistic, from the same replicates the figure draws (a
    # regression test: a total over all replicates once made every p-value 0).
    import re

    posterior = fake_posterior(model1, chains=2, draws=100)
    fig = plots.plot_ppc(model1, posterior, n_replicates=100, random_state=0)
    title = " ".join(ax.get_title() for ax in fig.axes)
    found = dict(re.findall(r"(mean|sd) ([0-9.]+)", title))
    y_rep = plots._replicate_y(model1, posterior, 100, np.random.default_rng(0))
    y = model1._fit_y
    expected = {"mean": np.mean(y_rep.mean(1) >= y.mean()), "sd": np.mean(y_rep.std(1) >= y.std())}
    for k in ("mean", "sd"):
        assert float(found[k]) == pytest.approx(expected[k], abs=0.006)  # printed to 2 decimals
    # a model that describes its data: neither p-value at the extremes
    assert 0.05 < expected["mean"] < 0.95 and 0.05 < expected["sd"] < 0.95
