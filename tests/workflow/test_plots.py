"""Plots: each figure is built, written as a valid PNG, and leaves no pyplot figure open.

The posterior here is synthetic (normal draws around the EM estimate, in the layout that
``sample_posterior`` returns), so these tests need no sampling.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.workflow import io, plots
from tests.conftest import TRUTH_3, make_data
from tests.workflow import families

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
    family = model.result_.family
    if not family.has_sigma:  # Poisson, binomial: no sigma
        pass
    elif model.variance == "component":
        post["sigma"] = (("chain", "draw", "component"), draw("sigma"))
    elif model.variance == "shared":
        post["sigma"] = (("chain", "draw"), draw("sigma")[..., 0])
    if family.has_df and family.df is None:  # Student-t with estimated df
        post["df"] = (("chain", "draw", "component"), np.abs(draw("df")))
    em = {}
    for name in io.parameter_names(model):
        d = ("component", "feature") if name == "coef" else ("component",)
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
    assert set(written) == set(plots.PLOT_FILES) - {"mixing"}  # no concomitant variables
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


# -- grouped, concomitant and shared-coefficient models (issue #11) ---------------------------

STRUCTURE = Path(__file__).resolve().parents[1] / "peers" / "structure"


@pytest.fixture(scope="module")
def frame3():
    """flexmix's concomitant_sim3: K = 3, a numeric (z1) and a categorical (z2) concomitant."""
    return pd.read_csv(STRUCTURE / "concomitant_sim3.csv")


@pytest.fixture(scope="module")
def concomitant3(frame3):
    return MixtureOfRegressions.from_formula(
        "y ~ x", frame3, 3, concomitant="~ z1 + C(z2)", n_init=3, random_state=0
    )


@pytest.fixture(scope="module")
def combined_frame():
    return pd.read_csv(STRUCTURE / "combined_sim.csv")


@pytest.fixture(scope="module")
def combined(combined_frame):
    """Grouped rows, a group-level concomitant z and a slope in w shared by both components."""
    return MixtureOfRegressions.from_formula(
        "y ~ x | id", combined_frame, concomitant="~ z", shared="~ w", n_init=3, random_state=0
    )


def test_mixing_plot_of_a_formula_fit(concomitant3, frame3, tmp_path):
    fig = plots.plot_mixing(concomitant3, data=frame3)
    curves, bars = [ax for ax in fig.axes if ax.get_visible()]
    assert (curves.get_xlabel(), bars.get_xlabel()) == ("z1", "z2")  # the original variables
    # z1: one curve per component (the prior probability) and a rug of the 900 rows
    assert len(curves.lines) == 3 + 2  # three curves, the rug, the zero line
    z1 = curves.lines[0].get_xdata()
    assert (z1.min(), z1.max()) == (frame3["z1"].min(), frame3["z1"].max())
    held = frame3.iloc[[0] * z1.size].assign(z1=z1, z2="a")  # z2 at its first level
    expected = concomitant3.mixing_weights(held)
    for j in range(3):
        np.testing.assert_allclose(curves.lines[j].get_ydata(), expected[:, j], atol=1e-12)
    assert curves.lines[3].get_xdata().size == 900
    assert "z2 = a (first level)" in curves.get_title()
    # z2: a bar per component at each level, z1 at its mean
    heights = np.array([p.get_height() for p in bars.patches]).reshape(3, 3)  # (component, level)
    levels = frame3.iloc[:3].assign(z1=frame3["z1"].mean(), z2=["a", "b", "c"])
    np.testing.assert_allclose(heights.T, concomitant3.mixing_weights(levels), atol=1e-12)
    counts = frame3["z2"].value_counts()
    labels = [t.get_text() for t in bars.get_xticklabels()]
    assert labels == [f"{lv}\n(n = {counts[lv]})" for lv in "abc"]
    assert "~ z1 + C(z2)" in fig._suptitle.get_text()
    assert plots.save_figure(fig, tmp_path / "mixing.png").read_bytes().startswith(PNG_MAGIC)


def test_mixing_plot_of_arrays_shows_dummies_as_levels():
    rng = np.random.default_rng(0)
    W = np.column_stack([rng.normal(size=300), rng.integers(0, 2, 300)])
    X = rng.normal(size=(300, 1))
    y = np.where(rng.random(300) < 0.5, 2 + X[:, 0], -2 - X[:, 0]) + 0.3 * rng.normal(size=300)
    model = MixtureOfRegressions(2, n_init=2, random_state=0).fit(X, y, concomitant=W)
    fig = plots.plot_mixing(model)  # the training concomitant variables
    numeric, dummy = [ax for ax in fig.axes if ax.get_visible()]
    assert (numeric.get_xlabel(), dummy.get_xlabel()) == ("w0", "w1")
    assert len(dummy.patches) == 2 * 2  # two levels (0, 1) x two components
    heights = np.array([p.get_height() for p in dummy.patches]).reshape(2, 2)
    at = np.column_stack([np.full(2, W[:, 0].mean()), [0.0, 1.0]])
    np.testing.assert_allclose(heights.T, model.mixing_weights(at), atol=1e-12)
    plt.close(fig)


def test_mixing_plot_needs_a_concomitant_model(model1):
    with pytest.raises(ValueError, match="needs a model with concomitant variables"):
        plots.plot_mixing(model1)
    assert plots.plot_names(model1) == ["fit", "em_trace"]


def test_write_plots_adds_mixing_for_a_concomitant_model(combined, combined_frame, tmp_path):
    assert plots.plot_names(combined) == ["fit", "mixing", "em_trace"]
    written = plots.write_plots(tmp_path, combined, data=combined_frame, dpi=40)
    assert set(written) == {"fit", "mixing", "em_trace"}
    assert written["mixing"].name == "mixing.png"
    assert written["mixing"].read_bytes().startswith(PNG_MAGIC)


def test_fit_plot_of_grouped_rows_colours_by_the_group(combined, combined_frame):
    fig = plots.plot_fit(combined, data=combined_frame)
    x_panel, w_panel = [ax for ax in fig.axes if ax.get_visible()]
    colors = x_panel.collections[0].get_facecolors()[:, :3]
    resp = combined.responsibilities(combined_frame)  # per group: the frame holds id and z
    np.testing.assert_allclose(colors, resp @ plots._colors(2), atol=1e-6)
    # every row of a group has its group's colour
    first = pd.Series(range(len(combined_frame))).groupby(combined_frame["id"]).transform("first")
    np.testing.assert_allclose(colors, colors[first.to_numpy()], atol=1e-12)
    # w has one slope for all components: parallel lines, and the axis says why
    assert w_panel.get_xlabel() == "w (coefficient shared by all components)"
    assert x_panel.get_xlabel() == "x"
    slopes = [np.ptp(line.get_ydata()) / np.ptp(line.get_xdata()) for line in w_panel.lines]
    np.testing.assert_allclose(slopes, combined.coef_[0, 1], rtol=1e-10)
    title = fig._suptitle.get_text()
    assert "120 groups" in title and "mixing weights ~ z" in title and "shared: w" in title
    # the training data (no frame) give the same colours
    training = plots.plot_fit(combined).axes[0].collections[0].get_facecolors()[:, :3]
    np.testing.assert_allclose(training, colors, atol=1e-12)
    plt.close(fig)


def test_fit_plot_bands_of_a_structured_fit_use_its_own_covariance(combined):
    blocks = plots._em_line_covariance(combined)
    cov, labels = combined.covariance_, combined.covariance_labels_
    index = [labels.index(n) for n in ("intercept[1]", "coef[1,0]", "coef[1,1]")]
    np.testing.assert_array_equal(blocks[1], cov[np.ix_(index, index)])


def test_ppc_replicates_of_a_grouped_concomitant_model(combined):
    posterior = fake_posterior(combined, chains=1, draws=40)
    K, r = combined.concomitant_coef_.shape
    shape = ("chain", "draw", "component")
    posterior["posterior"] = (
        posterior["posterior"]
        .to_dataset()
        .assign(
            concomitant_intercept=(
                shape,
                np.broadcast_to(combined.concomitant_intercept_, (1, 40, K)),
            ),
            concomitant_coef=(
                (*shape, "concomitant"),
                np.broadcast_to(combined.concomitant_coef_, (1, 40, K, r)),
            ),
        )
    )
    y_rep = plots._replicate_y(combined, posterior, 40, np.random.default_rng(1))
    assert y_rep.shape == (40, 600)
    # each row's prior is the fit's mixing weight at its concomitant variables
    prior = plots._row_priors(
        combined, posterior["posterior"].to_dataset(), np.arange(40), np.ones((40, K))
    )
    np.testing.assert_allclose(prior[0], combined.mixing_weights(combined._fit_concomitant))
    fig = plots.plot_ppc(combined, posterior, n_replicates=40)
    plt.close(fig)


def test_structured_replicates_draw_one_component_per_group():
    # lines 100 apart with a tiny sigma: each replicated y tells its component
    groups = np.repeat(np.arange(400), 3)
    n, R = groups.size, 5
    prior = np.broadcast_to([0.3, 0.7], (R, n, 2))

    def draw(r, z):  # replicate r's y at the rows' components z
        return np.array([0.0, 100.0])[z]

    y_rep = plots._replicate_structured(prior, draw, groups, np.random.default_rng(0))
    z = (y_rep > 50).reshape(R, 400, 3)
    assert (z == z[:, :, :1]).all()  # the rows of a group share their component
    # the share of component 1 over 2000 group draws: 0.7 +- 0.01 (sd), 4 sd allowed
    assert z[:, :, 0].mean() == pytest.approx(0.7, abs=0.04)
    ungrouped = plots._replicate_structured(prior, draw, None, np.random.default_rng(0))
    mixed = (ungrouped > 50).reshape(R, 400, 3)
    assert not (mixed == mixed[:, :, :1]).all()  # without groups each row draws its own


def structured_posterior(model, chains=2, draws=50):
    """fake_posterior plus the concomitant coefficients, with the shared slope one number for
    all components (as the Bayesian layer's Deterministic coef)."""
    tree = fake_posterior(model, chains=chains, draws=draws)
    post = tree["posterior"].to_dataset()
    shared = np.asarray(model.shared_)
    coef = post["coef"].values.copy()
    coef[:, :, :, shared] = coef[:, :, :1, shared]
    rng = np.random.default_rng(3)
    K, r = model.concomitant_coef_.shape
    se = model.standard_errors_
    alpha = model.concomitant_intercept_ + se["concomitant_intercept"] * rng.normal(
        size=(chains, draws, K)
    )
    gamma = model.concomitant_coef_ + se["concomitant_coef"] * rng.normal(
        size=(chains, draws, K, r)
    )
    alpha[:, :, 0], gamma[:, :, 0] = 0.0, 0.0  # the reference
    names = [str(n) for n in model.concomitant_names_in_]
    post = post.assign(
        coef=(post["coef"].dims, coef),
        concomitant_intercept=(("chain", "draw", "component"), alpha),
        concomitant_coef=(("chain", "draw", "component", "concomitant"), gamma),
    ).assign_coords(concomitant=names)
    em = tree["em"].to_dataset().assign_coords(concomitant=names)
    em = em.assign(
        concomitant_intercept=("component", model.concomitant_intercept_),
        concomitant_intercept_se=("component", se["concomitant_intercept"]),
        concomitant_coef=(("component", "concomitant"), model.concomitant_coef_),
        concomitant_coef_se=(("component", "concomitant"), se["concomitant_coef"]),
    )
    return xr.DataTree.from_dict({"posterior": post, "em": em})


def test_posterior_figures_of_a_structured_model(combined):
    posterior = structured_posterior(combined)
    fig = plots.plot_forest(posterior)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {
        "weights",
        "intercept",
        "coef of x",
        "coef of w (shared)",
        "sigma",
        "concomitant intercept",
        "concomitant coef of z",
    }
    assert [t.get_text() for t in panels["coef of w (shared)"].get_yticklabels()] == ["shared"]
    for title in ("concomitant intercept", "concomitant coef of z"):  # component 0: reference
        assert [t.get_text() for t in panels[title].get_yticklabels()] == ["component 1"]
    # the EM point of the concomitant slope is the estimate of component 1
    squares = [line for line in panels["concomitant coef of z"].lines if line.get_marker() == "s"]
    assert squares[0].get_xdata()[0] == combined.concomitant_coef_[1, 0]
    plt.close(fig)
    fig = plots.plot_trace(posterior)
    titles = [ax.get_title() for ax in fig.axes[::2]]
    assert "coef of w (shared)" in titles and "concomitant coef of z" in titles
    shared_panel = fig.axes[2 * titles.index("coef of w (shared)")]
    assert len(shared_panel.lines) == 2  # one density per chain, drawn once, in grey
    assert all(line.get_color() == "0.25" for line in shared_panel.lines)
    plt.close(fig)
    ranked = plots._rank_dataset(posterior["posterior"].to_dataset())
    assert list(ranked.data_vars) == [
        "weights",
        "intercept",
        "coef",
        "coef_shared",
        "sigma",
        "concomitant_intercept",
        "concomitant_coef",
    ]
    assert ranked["coef"]["feature"].values.tolist() == ["x"]
    assert ranked["coef_shared"]["shared_feature"].values.tolist() == ["w"]
    assert ranked["concomitant_coef"]["mixing_component"].values.tolist() == [1]
    assert not ranked.to_array().isnull().any()  # no variable was aligned onto another's coords


def test_rank_plot_of_a_structured_model(combined):
    fig = plots.plot_rank(structured_posterior(combined))
    titles = {ax.get_title() for ax in fig.axes if ax.get_title()}
    assert {"coef_shared[w]", "concomitant_intercept[1]", "concomitant_coef[1, z]"} <= titles
    assert not {"coef[0, w]", "concomitant_intercept[0]"} & titles
    plots._close(fig)


def test_mixing_bands_are_the_delta_method_of_the_em_covariance(concomitant3):
    """The 95% half-widths match the spread of π(w) under draws of the concomitant
    coefficients from their EM normal approximation (Monte Carlo: 5% relative)."""
    band = plots._mixing_band_maker(concomitant3, 0.95)
    assert band.available
    W = np.array([[-1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [1.5, 0.0, 1.0]])
    pi = concomitant3.mixing_weights(W)
    half = band(W, pi)
    labels = concomitant3.covariance_labels_
    names = [
        f"concomitant_{kind}[{k}{'' if kind == 'intercept' else f',{c}'}]"
        for k in (1, 2)
        for kind, c in [("intercept", None)] + [("coef", c) for c in range(3)]
    ]
    idx = [labels.index(n) for n in names]
    cov = concomitant3.covariance_[np.ix_(idx, idx)]
    mean = np.concatenate(
        [
            np.r_[concomitant3.concomitant_intercept_[k], concomitant3.concomitant_coef_[k]]
            for k in (1, 2)
        ]
    )
    draws = np.random.default_rng(0).multivariate_normal(mean, cov, size=40_000)
    gate = np.zeros((draws.shape[0], 3, 4))
    gate[:, 1:, :] = draws.reshape(-1, 2, 4)
    eta = np.einsum("dkc,tc->dtk", gate, np.column_stack([np.ones(3), W]))
    sims = np.exp(eta - np.logaddexp.reduce(eta, axis=2, keepdims=True))
    np.testing.assert_allclose(half / 1.959964, sims.std(axis=0), rtol=0.05)


def test_integer_columns_encoded_by_level_are_drawn_by_level():
    """``C(Diet)`` of an integer column is categorical (bars per level, held at a level), and an
    integer column held at its mean is held as a float (regression: both used to fail)."""
    frame = pd.read_csv(STRUCTURE / "ChickWeight_grouped_concomitant.csv")  # int Time and Diet
    model = MixtureOfRegressions.from_formula(
        "weight ~ Time | Chick", frame, concomitant="~ C(Diet)", n_init=2, random_state=0
    )
    fig = plots.plot_mixing(model, data=frame)
    (bars,) = [ax for ax in fig.axes if ax.get_visible()]
    assert [t.get_text().split("\n")[0] for t in bars.get_xticklabels()] == ["1", "2", "3", "4"]
    plt.close(fig)
    fit = MixtureOfRegressions.from_formula(
        "weight ~ Time + C(Diet)", frame, n_init=2, random_state=0
    )
    fig = plots.plot_fit(fit, data=frame)
    time_panel, diet_panel = [ax for ax in fig.axes if ax.get_visible()][:2]
    assert "Diet = 1" in time_panel.get_title() and "Time = 10.7" in diet_panel.get_title()
    plt.close(fig)


# -- component families (issue #12) --------------------------------------------------------------


@pytest.fixture(scope="module")
def seizure():
    return families.seizure()


@pytest.fixture(scope="module")
def betablocker():
    return families.betablocker()


@pytest.fixture(scope="module")
def robust():
    return families.student_t()


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_poisson_fit_plot_shows_rates_and_exp_eta_per_treatment(seizure):
    frame = families.seizure_frame()
    fig = plots.plot_fit(seizure, data=frame)
    # Treatment interacts with log(Day): one Day panel per treatment, over its own days (the
    # curve at the most frequent level, "Yes", would run through days 1-27, where no row has it)
    no, yes = visible_axes(fig)
    assert (no.get_title(), yes.get_title()) == ("Treatment = No", "Treatment = Yes")
    assert no.get_xlabel() == yes.get_xlabel() == "Day"
    assert no.get_ylabel() == "Seizures / Hours"  # the data, not partial residuals
    assert "Poisson, offset np.log(Hours)" in fig.texts[0].get_text()  # the suptitle
    for ax, level in ((no, "No"), (yes, "Yes")):
        rows = frame[frame.Treatment == level]
        points = ax.collections[0].get_offsets()
        np.testing.assert_array_equal(points[:, 0], rows.Day)
        np.testing.assert_allclose(points[:, 1], rows.Seizures / rows.Hours, rtol=1e-12)
        # the EM curves: each component's mean per hour, exp(eta), from predict_components
        day = ax.lines[0].get_xdata()
        assert (day.min(), day.max()) == (rows.Day.min(), rows.Day.max())
        grid = pd.DataFrame({"Treatment": level, "Day": day, "Hours": 1.0})
        expected = seizure.predict_components(grid)
        for j, line in enumerate(ax.lines[:2]):
            np.testing.assert_allclose(line.get_ydata(), expected[:, j], rtol=1e-10)
        band = ax.collections[1].get_paths()[0].vertices[:, 1]  # EM band: positive rates
        assert band.min() > 0
        assert ax.get_ylim()[0] < 0 < points[:, 1].min() + 1e-12  # counts from 0 on
    plt.close(fig)


def test_binomial_fit_plot_shows_proportions_and_expit_eta(betablocker):
    frame = families.betablocker_frame()
    fig = plots.plot_fit(betablocker, data=frame)
    (ax,) = visible_axes(fig)
    assert ax.get_ylabel() == "Deaths / Total"
    assert ax.get_xlabel() == "Treatment (coefficient shared by all components)"
    np.testing.assert_allclose(
        np.sort(ax.collections[0].get_offsets()[:, 1]), np.sort(frame.Deaths / frame.Total)
    )
    # per component and level: expit(eta), the mean of one trial
    levels = pd.DataFrame({"Treatment": ["Control", "Treated"], "Center": 1, "Total": 1})
    expected = betablocker.predict_components(levels)
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(markers) == 3
    for j, line in enumerate(markers):
        np.testing.assert_allclose(line.get_ydata(), expected[:, j], rtol=1e-10)
    low, high = ax.get_ylim()
    assert -0.03 <= low < 0 and high <= 1.03
    assert "binomial, trials Total" in fig.texts[0].get_text()
    plt.close(fig)


def test_student_t_fit_plot_marks_the_outliers_it_downweights(robust):
    fig = plots.plot_fit(robust, data=families.robust_frame())
    (ax,) = visible_axes(fig)
    resp = robust.responsibilities(robust._fit_X, robust._fit_y)
    c = resp.argmax(axis=1)
    mu = robust.intercept_[c] + robust._fit_X[:, 0] * robust.coef_[c, 0]
    delta = (robust._fit_y - mu) / robust.sigma_[c]
    u = (robust.df_[c] + 1) / (robust.df_[c] + delta**2)
    filled, open_ = ax.collections[:2]
    assert len(open_.get_offsets()) == np.sum(u < plots.T_OUTLIER_WEIGHT) > 5  # the 5% shifted
    assert len(filled.get_offsets()) + len(open_.get_offsets()) == robust._fit_y.size
    assert np.all(open_.get_facecolors()[:, 3] == 0)  # open circles
    # the line is the regression line (the t's location), as for the Gaussian
    x = ax.lines[0].get_xdata()
    np.testing.assert_allclose(
        ax.lines[0].get_ydata(), robust.intercept_[0] + robust.coef_[0, 0] * x
    )
    title = fig.texts[0].get_text().replace("\u00a0", " ")
    assert "Student-t errors, df = " in title
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(text.startswith("open: outliers") for text in legend)
    plt.close(fig)


def test_poisson_partial_residuals_are_taken_on_the_log_scale():
    data = simulate(
        300, intercept=[0.5, 1.5], coef=[[0.5, 0.3], [-0.4, 0.2]], family="poisson",
        exposure=(0.5, 2.0), random_state=0,
    )  # fmt: skip
    model = MixtureOfRegressions(2, family="poisson", random_state=0)
    model.fit(pd.DataFrame(data.X, columns=["x", "w"]), data.y, offset=data.offset)
    fig = plots.plot_fit(model)  # the training data, with their offset
    first = visible_axes(fig)[0]
    assert first.get_ylabel() == "y / exp(offset) (partial residual)"
    c = model.responsibilities(model._fit_X, model._fit_y, offset=data.offset).argmax(axis=1)
    w_mean = data.X[:, 1].mean()
    rate = data.y / np.exp(data.offset)
    # each rate times exp(coef_w (mean w - w)): a zero count stays zero
    expected = rate * np.exp(model.coef_[c, 1] * (w_mean - data.X[:, 1]))
    np.testing.assert_allclose(first.collections[0].get_offsets()[:, 1], expected, rtol=1e-9)
    plt.close(fig)
    with pytest.raises(ValueError, match="fitted with offset="):
        plots.plot_fit(model, X=data.X, y=data.y)  # new rows need their offset
    fig = plots.plot_fit(model, X=data.X, y=data.y, offset=data.offset)
    plt.close(fig)


def test_interactions_with_a_factor_split_the_panels_of_a_gaussian_fit_too():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": rng.choice(["a", "b"], 300), "x": rng.normal(size=300)})
    frame["x"] += np.where(frame.g == "b", 5.0, 0.0)  # the levels cover different x
    frame["y"] = np.where(rng.random(300) < 0.5, 1.0, -1.0) * frame.x + rng.normal(size=300)
    model = MixtureOfRegressions.from_formula("y ~ g * x", frame, n_init=2, random_state=0)
    fig = plots.plot_fit(model, data=frame)
    a, b = visible_axes(fig)
    assert (a.get_title(), b.get_title()) == ("g = a", "g = b")
    for ax, level in ((a, "a"), (b, "b")):
        x = frame.x[frame.g == level]
        assert (ax.lines[0].get_xdata().min(), ax.lines[0].get_xdata().max()) == (x.min(), x.max())
        assert ax.get_ylabel() == "y"
    plt.close(fig)


def test_posterior_figures_of_each_family(seizure, robust, tmp_path):
    post = fake_posterior(seizure, draws=80)
    written = plots.write_plots(tmp_path, seizure, post, data=families.seizure_frame())
    assert set(written) == {"fit", "em_trace", "trace", "rank", "forest", "ppc"}
    fig = plots.plot_trace(post)
    titles = [ax.get_title() for ax in fig.axes]
    assert not any(t.startswith("sigma") for t in titles)  # a Poisson fit has no sigma
    plt.close(fig)
    fig = plots.plot_ppc(seizure, post)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Seizures / Hours" and ax.lines[-1].get_xdata().min() == 0.0
    assert "mean" in ax.get_title()
    plt.close(fig)

    post = fake_posterior(robust, draws=80)
    fig = plots.plot_trace(post)
    (df_density,) = [ax for ax in fig.axes if ax.get_title() == "df (log scale)"]
    assert df_density.get_xscale() == "log"
    plt.close(fig)
    fig = plots.plot_forest(post)
    (df_panel,) = [ax for ax in fig.axes if ax.get_title() == "df (log scale)"]
    assert df_panel.get_xscale() == "log"
    # EM: df_j with its interval normal on log df, exp(log df_j +- z se_j / df_j)
    em_square = [line for line in df_panel.lines if line.get_marker() == "s"]
    np.testing.assert_allclose(
        sorted(float(line.get_xdata()[0]) for line in em_square), np.sort(robust.df_)
    )
    plt.close(fig)
    fig = plots.plot_ppc(robust, post)
    assert "median" in fig.axes[0].get_title() and "IQR" in fig.axes[0].get_title()
    plt.close(fig)


def test_replicates_of_each_family_come_from_its_distribution():
    rng = np.random.default_rng(0)
    eta = np.full(20000, 0.3)
    counts = plots._draw_given("poisson", eta, {}, {"offset": np.log(np.full(20000, 2.0))}, rng)
    assert counts.mean() == pytest.approx(2 * np.exp(0.3), rel=0.02)  # sd of the mean 0.4%
    m = np.full(20000, 7.0)
    successes = plots._draw_given("binomial", eta, {}, {"trials": m}, rng)
    assert successes.max() <= 7 and successes.mean() == pytest.approx(
        7 / (1 + np.exp(-0.3)), rel=0.01
    )
    t = plots._draw_given("student_t", eta, {"sigma": 2.0, "df": np.full(20000, 3.0)}, {}, rng)
    # the t(3) IQR is 1.53 sigma; its sampling sd here is about 1%
    q1, q3 = np.quantile(t - 0.3, [0.25, 0.75])
    assert (q3 - q1) / 2.0 == pytest.approx(2 * stats.t(3).ppf(0.75), rel=0.05)


def test_a_loaded_formula_fit_draws_the_same_panels(seizure, tmp_path):
    # a spec rebuilt from its formula does not know its categorical columns until it has
    # encoded data (formulaic): fit.png of `bayes-mlr report` lost the Treatment panels
    seizure.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    frame = families.seizure_frame()
    before, after = plots.plot_fit(seizure, data=frame), plots.plot_fit(loaded, data=frame)
    assert [ax.get_title() for ax in visible_axes(after)] == ["Treatment = No", "Treatment = Yes"]
    for a, b in zip(visible_axes(before), visible_axes(after), strict=True):
        for u, v in zip(a.lines, b.lines, strict=True):
            np.testing.assert_array_equal(u.get_ydata(), v.get_ydata())
    plt.close(before)
    plt.close(after)


def test_a_loaded_concomitant_fit_draws_its_text_column(tmp_path):
    frame = pd.read_csv(families.PEERS.parent / "structure" / "concomitant_sim3.csv")
    model = MixtureOfRegressions.from_formula(
        "y ~ x", frame, 3, concomitant="~ z2", n_init=2, random_state=0
    )
    model.save(tmp_path)
    fig = plots.plot_mixing(MixtureOfRegressions.load(tmp_path), data=frame)
    assert [ax.get_xlabel() for ax in visible_axes(fig)] == ["z2"]
    plt.close(fig)


def test_forest_draws_no_em_interval_for_df_at_its_bound(robust):
    from bayes_mlr.core.components.student_t import DF_MAX

    post = fake_posterior(robust, draws=40)
    em = post["em"].to_dataset()
    df = em["df"].values.copy()
    df[1] = DF_MAX  # as EM reports a practically normal component
    post["em"] = xr.DataTree(em.assign(df=("component", df)))
    with pytest.warns(plots.MissingBandWarning, match="no EM interval for df at the bound"):
        fig = plots.plot_forest(post)
    (panel,) = [ax for ax in fig.axes if ax.get_title() == "df (log scale)"]
    em_lines = [line for line in panel.lines if line.get_color() == "0.35"]
    # component 0: two interval lines and the square; component 1: the square alone
    assert sum(line.get_marker() == "s" for line in em_lines) == 2
    assert len(em_lines) == 2 + 1 + 1
    plt.close(fig)
