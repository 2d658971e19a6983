"""Figures of a fitted mixture of regressions and its posterior.

* :func:`plot_fit`: the data coloured by responsibility with each component's regression line,
  an EM band (delta method from the observed information) and a posterior band. One feature:
  ``y`` against ``x``. Several: one panel per feature of partial residuals, ``y`` minus the
  other features' contribution (at their mean) under the observation's most probable component.
* :func:`plot_log_likelihood_trace`: EM's log-likelihood per iteration and its gap to the end.
* :func:`plot_trace`, :func:`plot_rank`, :func:`plot_forest`: ArviZ's own plots
  (``arviz_plots``, matplotlib backend); the forest plot sets EM (a normal approximation
  ``N(estimate, SE^2)``) beside the posterior.
* :func:`write_plots` writes them all as PNG files (atomically) and :func:`save_figure` one.

matplotlib and arviz_plots are imported inside the functions. Each function returns a
``matplotlib.figure.Figure``; our own figures are created without pyplot (no global state).
"""

from __future__ import annotations

import io as _io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PLOT_FILES",
    "plot_fit",
    "plot_forest",
    "plot_log_likelihood_trace",
    "plot_rank",
    "plot_trace",
    "save_figure",
    "write_plots",
]

#: File names that :func:`write_plots` writes, by plot.
PLOT_FILES = {
    "fit": "fit.png",
    "em_trace": "em_trace.png",
    "trace": "trace.png",
    "rank": "rank.png",
    "forest": "forest.png",
}
_PARAMS = ("weights", "intercept", "coef", "sigma")
_MAX_PANELS = 9
_MAX_BAND_DRAWS = 1000


def _colors(n_components: int) -> np.ndarray:
    """One RGB colour per component (matplotlib's tab10, cycling)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return np.array([cmap(j % 10)[:3] for j in range(n_components)])


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Any, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG atomically, then close it (also if pyplot made it).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
    dpi : int

    Returns
    -------
    pathlib.Path
    """
    from .io import write_bytes

    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _close(fig)
    return write_bytes(path, buffer.getvalue())


def _close(fig: Any) -> None:
    """Release a pyplot-managed figure (arviz_plots makes those); ours have no manager."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


# --------------------------------------------------------------------------------------------
# Data with the fitted lines
# --------------------------------------------------------------------------------------------


def _posterior_draws(posterior: Any, K: int, p: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Thinned posterior draws of the intercepts (S, K) and coefficients (S, K, p)."""
    if posterior is None:
        return None
    try:
        post = posterior["posterior"].to_dataset()
    except KeyError:
        return None
    if "coef" not in post:
        return None
    coef = post["coef"].transpose("chain", "draw", "component", "feature").to_numpy()
    coef = coef.reshape(-1, K, p)
    if "intercept" in post:
        intercept = post["intercept"].transpose("chain", "draw", "component").to_numpy()
        intercept = intercept.reshape(-1, K)
    else:
        intercept = np.zeros(coef.shape[:2])
    step = max(1, math.ceil(coef.shape[0] / _MAX_BAND_DRAWS))
    return intercept[::step], coef[::step]


def _em_line_covariance(model: Any) -> list[np.ndarray] | None:
    """Covariance of ``[intercept_j, coef_j]`` per component (NaN where singular)."""
    from .inference import covariance

    K, p = model.coef_.shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cov, labels = covariance(
                model._fit_X,
                model._fit_y,
                model.weights_,
                model.intercept_,
                model.coef_,
                model.sigma_,
                variance=model.variance,
                fit_intercept=bool(model.fit_intercept),
                sample_weight=model._fit_sample_weight,
            )
    except (ValueError, np.linalg.LinAlgError):
        return None
    index = {label: i for i, label in enumerate(labels)}
    blocks = []
    for j in range(K):
        names = ([f"intercept[{j}]"] if model.fit_intercept else []) + [
            f"coef[{j},{k}]" for k in range(p)
        ]
        if not all(n in index for n in names):
            return None
        rows = [index[n] for n in names]
        block = cov[np.ix_(rows, rows)]
        if not model.fit_intercept:  # pad a zero-variance intercept
            block = np.pad(block, ((1, 0), (1, 0)))
        blocks.append(block)
    return blocks


def plot_fit(
    model: Any,
    posterior: Any = None,
    *,
    X: Any = None,
    y: Any = None,
    response: str = "y",
    ci_prob: float = 0.94,
    max_points: int = 5000,
    random_state: int = 0,
):
    """The data coloured by responsibility, with each component's line and its bands.

    Each point's colour mixes the component colours by its EM responsibilities (an ambiguous
    point looks blended). Each component has its EM line (solid), a ``ci_prob`` band from the
    EM standard errors (delta method, shaded) and, with a posterior, the posterior mean line
    (dashed) with the central ``ci_prob`` interval of the line over the draws (dotted edges).

    With one feature the panel is ``y`` against ``x``. With several, panel ``f`` shows the
    partial residual ``y_i - sum_{g != f} coef_{c_i g} (x_ig - mean_g)`` against ``x_if``,
    where ``c_i`` is the most probable component of observation ``i``, and the lines
    ``intercept_j + sum_{g != f} coef_jg mean_g + coef_jf x_f`` (at most 9 panels).

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted; its training data are used unless ``X`` and ``y`` are given.
    posterior : xarray.DataTree, optional
        From :func:`bayes_mlr.bayes.sample_posterior`.
    X : array-like of shape (n_samples, n_features), optional
    y : array-like of shape (n_samples,), optional
    response : str
        Label of the y axis.
    ci_prob : float
        Probability of the bands.
    max_points : int
        At most this many points are drawn (a seeded random subset).
    random_state : int
        Seed of that subset.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.stats import norm

    model._check_fitted()
    if X is None and y is None:
        X_arr, y_arr = np.asarray(model._fit_X), np.asarray(model._fit_y)
    elif X is None or y is None:
        raise ValueError("pass both X and y, or neither (to use the training data)")
    else:
        X_arr = model._check_X(X)
        y_arr = np.asarray(y, dtype=float).reshape(-1)
    K, p = model.coef_.shape
    names = model.feature_names
    resp = model.responsibilities(X_arr, y_arr)
    component = resp.argmax(axis=1)
    colors = _colors(K)
    point_colors = np.clip(resp @ colors, 0.0, 1.0)
    rng = np.random.default_rng(random_state)
    shown = np.arange(y_arr.shape[0])
    if shown.size > max_points:
        shown = np.sort(rng.choice(shown, size=max_points, replace=False))
    x_mean = X_arr.mean(axis=0)
    draws = _posterior_draws(posterior, K, p)
    em_cov = _em_line_covariance(model)
    z = float(norm.ppf(0.5 + ci_prob / 2))
    tail = (1 - ci_prob) / 2

    panels = list(range(min(p, _MAX_PANELS)))
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(5.2 * ncols + 1.5, 4.2 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, f in zip(axes, panels, strict=False):
        others = np.arange(p) != f
        # partial residual under each point's most probable component
        shift = ((X_arr[:, others] - x_mean[others]) * model.coef_[component][:, others]).sum(1)
        resid = y_arr - shift
        size = 10 if shown.size <= 1000 else 4
        ax.scatter(
            X_arr[shown, f],
            resid[shown],
            c=point_colors[shown],
            s=size,
            alpha=0.6,
            linewidths=0,
            rasterized=shown.size > 2000,
        )
        grid = np.linspace(X_arr[:, f].min(), X_arr[:, f].max(), 100)
        for j in range(K):
            base = model.intercept_[j] + model.coef_[j, others] @ x_mean[others]
            line = base + model.coef_[j, f] * grid
            ax.plot(grid, line, color=colors[j], lw=2, label=f"component {j} (EM)")
            if em_cov is not None:
                g = np.zeros((grid.size, p + 1))  # gradient w.r.t. [intercept, coef]
                g[:, 0] = 1.0
                g[:, 1:] = x_mean
                g[:, 1 + f] = grid
                var = np.einsum("ti,ij,tj->t", g, em_cov[j], g)
                if np.all(np.isfinite(var)):
                    half = z * np.sqrt(np.maximum(var, 0.0))
                    ax.fill_between(
                        grid, line - half, line + half, color=colors[j], alpha=0.25, lw=0
                    )
            if draws is not None:
                a, b = draws
                lines = (a[:, j] + b[:, j][:, others] @ x_mean[others])[:, None] + (
                    b[:, j, f][:, None] * grid[None, :]
                )
                lo, hi = np.quantile(lines, [tail, 1 - tail], axis=0)
                ax.plot(grid, lines.mean(axis=0), color=colors[j], lw=1.5, ls="--")
                for edge in (lo, hi):
                    ax.plot(grid, edge, color=colors[j], lw=1, ls=":")
        ax.set_xlabel(names[f])
        ax.set_ylabel(response if p == 1 else f"{response} (partial residual)")
        if p > 1:
            ax.set_title(f"{names[f]}: other features at their mean", fontsize="medium")
    _fit_legend(
        fig,
        axes[0],
        colors,
        ci_prob,
        with_posterior=draws is not None,
        with_em_band=em_cov is not None,
    )
    title = f"{response} ~ {', '.join(names)}: K = {K}, variance = {model.variance}"
    if p > len(panels):
        title += f" (first {len(panels)} of {p} features)"
    fig.suptitle(title)
    return fig


def _fit_legend(fig, ax, colors, ci_prob, *, with_posterior, with_em_band) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=c, lw=2, label=f"component {j}") for j, c in enumerate(colors)]
    handles.append(Line2D([], [], color="0.3", lw=2, label="EM line"))
    if with_em_band:
        handles.append(Patch(color="0.3", alpha=0.25, label=f"EM {ci_prob:.0%} band (SE)"))
    if with_posterior:
        handles.append(Line2D([], [], color="0.3", lw=1.5, ls="--", label="posterior mean"))
        handles.append(
            Line2D([], [], color="0.3", lw=1, ls=":", label=f"posterior {ci_prob:.0%} interval")
        )
    handles.append(
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color="0.5",
            label="points: colour mixes the\ncomponents by responsibility",
        )
    )
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)


# --------------------------------------------------------------------------------------------
# EM convergence
# --------------------------------------------------------------------------------------------


def plot_log_likelihood_trace(model: Any):
    """EM's log-likelihood after every iteration, and its gap to the final value (log scale).

    Parameters
    ----------
    model : MixtureOfRegressions or array-like
        A fitted estimator (its ``log_likelihood_trace_``) or the trace itself.

    Returns
    -------
    matplotlib.figure.Figure
    """
    trace = np.asarray(getattr(model, "log_likelihood_trace_", model), dtype=float).ravel()
    if trace.size == 0:
        raise ValueError("the log-likelihood trace is empty")
    fig = _new_figure(10, 3.8)
    left, right = fig.subplots(1, 2)
    it = np.arange(trace.size)
    left.plot(it, trace, marker="o" if trace.size <= 60 else None, ms=3)
    left.set_xlabel("EM iteration")
    left.set_ylabel("log-likelihood")
    left.set_title("log-likelihood (never decreases)", fontsize="medium")
    gap = trace[-1] - trace
    keep = gap > 0
    if np.any(keep):
        right.semilogy(it[keep], gap[keep], marker="o" if keep.sum() <= 60 else None, ms=3)
    else:
        right.text(
            0.5, 0.5, "a single value: nothing to show", ha="center", transform=right.transAxes
        )
    right.set_xlabel("EM iteration")
    right.set_ylabel("final minus current")
    right.set_title("distance to the final log-likelihood", fontsize="medium")
    status = ""
    if hasattr(model, "converged_"):
        status = (
            f": {'converged' if model.converged_ else 'NOT converged'} after "
            f"{model.n_iter_} iterations"
        )
    fig.suptitle(f"EM log-likelihood trace{status}")
    return fig


# --------------------------------------------------------------------------------------------
# ArviZ plots of the posterior
# --------------------------------------------------------------------------------------------


def _var_names(posterior: Any) -> list[str]:
    post = posterior["posterior"]
    return [v for v in _PARAMS if v in post.data_vars]


def _figure_of(pc: Any):
    return pc.viz.ds["figure"].item()


def plot_trace(posterior: Any):
    """ArviZ's trace plot (``arviz_plots.plot_trace_dist``): marginals and chains per parameter.

    Parameters
    ----------
    posterior : xarray.DataTree

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    pc = azp.plot_trace_dist(posterior, var_names=_var_names(posterior), backend="matplotlib")
    return _figure_of(pc)


def plot_rank(posterior: Any):
    """ArviZ's rank plot (``arviz_plots.plot_rank``): fractional-rank ECDFs of each chain.

    Well-mixed chains stay inside the envelope; a chain in another mode (e.g. another
    labelling) leaves it.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    pc = azp.plot_rank(posterior, var_names=_var_names(posterior), backend="matplotlib")
    return _figure_of(pc)


def _em_as_draws(posterior: Any) -> Any:
    """A DataTree of pseudo-draws from ``N(EM, SE^2)`` shaped like the posterior.

    The draws are normal quantiles at evenly spaced probabilities (no randomness), so the
    forest plot's intervals for EM are the normal-approximation intervals. A NaN standard error
    (singular information) is drawn as a point.
    """
    import xarray as xr
    from scipy.stats import norm

    post = posterior["posterior"].to_dataset()
    em = posterior["em"].to_dataset()
    C, D = post.sizes["chain"], post.sizes["draw"]
    q = norm.ppf((np.arange(C * D) + 0.5) / (C * D)).reshape(C, D)
    q = xr.DataArray(
        q,
        dims=("chain", "draw"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values},
    )
    out = {}
    for name in _var_names(posterior):
        value, se = em[name], em[f"{name}_se"].fillna(0.0)
        if "component" not in post[name].dims:  # shared sigma: one parameter
            value, se = value.isel(component=0, drop=True), se.isel(component=0, drop=True)
        out[name] = (value + se * q).transpose("chain", "draw", ...)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(out)})


def plot_forest(posterior: Any, *, ci_prob: float = 0.94):
    """ArviZ's forest plot of every parameter: EM (normal approximation) beside the posterior.

    Parameters
    ----------
    posterior : xarray.DataTree
        With the ``em`` group that :func:`~bayes_mlr.bayes.sample_posterior` adds.
    ci_prob : float
        Probability of the outer interval (the inner one is 50%).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    if "em" not in posterior.children:
        raise ValueError("the posterior has no 'em' group (sample it with sample_posterior)")
    trees = {"EM (normal approx.)": _em_as_draws(posterior), "posterior": posterior}
    pc = azp.plot_forest(
        trees,
        var_names=_var_names(posterior),
        combined=True,
        ci_kind="eti",
        ci_probs=(0.5, ci_prob),
        backend="matplotlib",
    )
    pc.add_legend("model")
    fig = _figure_of(pc)
    fig.suptitle(f"EM vs posterior: points, 50% and {ci_prob:.0%} intervals")
    return fig


# --------------------------------------------------------------------------------------------
# All plots
# --------------------------------------------------------------------------------------------


def write_plots(
    directory: str | Path,
    model: Any,
    posterior: Any = None,
    *,
    response: str = "y",
    ci_prob: float = 0.94,
    dpi: int = 100,
) -> dict[str, Path]:
    """Write every plot as a PNG into ``directory`` (names in :data:`PLOT_FILES`).

    Without a posterior only ``fit.png`` (EM bands) and ``em_trace.png`` are written.

    Returns
    -------
    dict of str to pathlib.Path
        The files written, by plot name.
    """
    directory = Path(directory)
    out = {}
    makers: Mapping[str, Any] = {
        "fit": lambda: plot_fit(model, posterior, response=response, ci_prob=ci_prob),
        "em_trace": lambda: plot_log_likelihood_trace(model),
    }
    if posterior is not None:
        makers = {
            **makers,
            "trace": lambda: plot_trace(posterior),
            "rank": lambda: plot_rank(posterior),
            "forest": lambda: plot_forest(posterior, ci_prob=ci_prob),
        }
    for name, make in makers.items():
        out[name] = save_figure(make(), directory / PLOT_FILES[name], dpi=dpi)
    return out
