"""bayes_mlr.bayes.priors: data-scaled defaults, overrides, and the record a posterior keeps.

numpy only: nothing here imports PyMC (tests/bayes/test_model.py checks the PyMC model that uses
these arguments).
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr.bayes import priors


def test_default_priors_scale_with_the_data():
    X = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([1.0, 3.0, 5.0, 7.0])
    prior = priors.default_priors(X, y, 3)
    s_x = s_y = np.sqrt(5.0)
    # algebra on four numbers: exact up to rounding
    np.testing.assert_array_equal(prior["weights"]["alpha"], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(prior["coef"]["sigma"], [2.5 * s_y / s_x], rtol=1e-12)
    assert prior["intercept"]["mu"] == pytest.approx(4.0, rel=1e-12)
    assert prior["intercept"]["sigma"] == pytest.approx(
        2.5 * s_y * np.sqrt(1 + (3 / s_x) ** 2), rel=1e-12
    )
    assert prior["sigma"]["sigma"] == pytest.approx(s_y, rel=1e-12)


def test_sample_weights_are_replication_weights():
    X = np.array([[0.0], [2.0], [4.0]])
    y = np.array([1.0, 3.0, 5.0])
    weighted = priors.default_priors(X, y, 2, sample_weight=[1.0, 2.0, 1.0])
    repeated = priors.default_priors(X[[0, 1, 1, 2]], y[[0, 1, 1, 2]], 2)
    for name, args in weighted.items():
        for key, value in args.items():
            np.testing.assert_allclose(value, repeated[name][key], rtol=1e-12, err_msg=name)


def test_constant_columns_use_scale_one():
    X = np.ones((5, 1))
    y = np.full(5, 3.0)
    prior = priors.default_priors(X, y, 2)
    np.testing.assert_allclose(prior["coef"]["sigma"], [2.5])
    assert prior["sigma"]["sigma"] == 1.0


def test_merge_replaces_only_what_is_given():
    defaults = priors.default_priors(np.arange(6.0)[:, None], np.arange(6.0), 2)
    merged = priors.merge_priors(defaults, {"coef": {"sigma": 1.0}})
    assert merged["coef"]["sigma"] == 1.0
    assert merged["coef"]["mu"] == defaults["coef"]["mu"]
    assert merged["intercept"] == defaults["intercept"]
    assert defaults["coef"]["sigma"] != 1.0  # the defaults are not modified


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"slope": {"sigma": 1.0}}, "unknown prior 'slope'"),
        ({"coef": {"scale": 1.0}}, "unknown argument 'scale' of the coef prior"),
    ],
)
def test_merge_names_unknown_priors_and_arguments(override, match):
    defaults = priors.default_priors(np.arange(6.0)[:, None], np.arange(6.0), 2)
    with pytest.raises(ValueError, match=match):
        priors.merge_priors(defaults, override)


def _rows(record, parameter):
    return [r for r in record["rows"] if r["parameter"] == parameter]


def test_describe_defaults_one_row_per_parameter_and_feature():
    X = np.column_stack([np.arange(8.0), np.arange(8.0) ** 2])
    prior = priors.default_priors(X, np.arange(8.0), 3)
    record = priors.describe_priors(prior, feature_names=["x", "x2"])
    assert record["source"] == "default" and record["overridden"] == []
    assert _rows(record, "weights") == [
        {
            "parameter": "weights",
            "component": None,
            "feature": None,
            "distribution": "Dirichlet",
            "arguments": {"alpha": [2.0, 2.0, 2.0]},
        }
    ]
    coef = _rows(record, "coef")
    assert [r["feature"] for r in coef] == ["x", "x2"]
    assert all(r["component"] is None and r["distribution"] == "Normal" for r in coef)
    assert coef[1]["arguments"]["sigma"] == pytest.approx(float(prior["coef"]["sigma"][1]))
    (sigma,) = _rows(record, "sigma")
    assert sigma["distribution"] == "HalfNormal"


def test_describe_per_component_overrides_and_variance_modes():
    prior = priors.merge_priors(
        priors.default_priors(np.arange(6.0)[:, None], np.arange(6.0), 2),
        {"intercept": {"mu": [0.0, 5.0]}},
    )
    record = priors.describe_priors(
        prior, feature_names=["x"], variance="shared", overrides={"intercept": {"mu": [0, 5]}}
    )
    assert record["source"] == "overridden" and record["overridden"] == ["intercept.mu"]
    intercept = _rows(record, "intercept")
    assert [r["component"] for r in intercept] == [0, 1]
    assert [r["arguments"]["mu"] for r in intercept] == [0.0, 5.0]
    assert [r["component"] for r in _rows(record, "sigma")] == ["shared"]

    fixed = priors.describe_priors(
        prior, feature_names=["x"], variance="fixed", fixed_sigma=[0.5, 0.7], fit_intercept=False
    )
    assert _rows(fixed, "intercept") == []
    assert [(r["distribution"], r["arguments"]) for r in _rows(fixed, "sigma")] == [
        ("fixed", {"value": 0.5}),
        ("fixed", {"value": 0.7}),
    ]


def test_one_component_has_no_weights_prior():
    prior = priors.default_priors(np.arange(6.0)[:, None], np.arange(6.0), 1)
    assert _rows(priors.describe_priors(prior, feature_names=["x"]), "weights") == []


def test_importing_priors_does_not_import_pymc():
    import subprocess
    import sys

    code = (
        "import sys, bayes_mlr.bayes.priors, bayes_mlr.workflow.spec; print('pymc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Structured models: concomitant priors, shared coefficients
# --------------------------------------------------------------------------------------------


def test_concomitant_priors_scale_with_the_concomitant_variables():
    X = np.arange(8.0)[:, None]
    W = np.column_stack([np.arange(8.0) * 2.0 + 10.0, np.ones(8)])  # a constant column: scale 1
    prior = priors.default_priors(X, np.arange(8.0), 3, concomitant=W)
    m_w, s_w = np.array([17.0, 1.0]), np.array([2.0 * np.sqrt(5.25), 1.0])
    # algebra on eight numbers: exact up to rounding
    np.testing.assert_allclose(prior["concomitant_coef"]["sigma"], 2.5 / s_w, rtol=1e-12)
    assert prior["concomitant_intercept"]["sigma"] == pytest.approx(
        2.5 * np.sqrt(1 + np.sum((m_w / s_w) ** 2)), rel=1e-12
    )
    # without concomitant variables there are no such priors, and overriding one is an error
    plain = priors.default_priors(X, np.arange(8.0), 3)
    assert "concomitant_coef" not in plain
    with pytest.raises(ValueError, match="no concomitant variables"):
        priors.merge_priors(plain, {"concomitant_coef": {"sigma": 1.0}})
    with pytest.raises(ValueError, match="shape"):
        priors.default_priors(X, np.arange(8.0), 3, concomitant=W[:5])


def test_describe_shared_coefficients_and_concomitant_priors():
    X = np.column_stack([np.arange(8.0), np.arange(8.0) ** 2])
    W = np.arange(8.0)[:, None]
    prior = priors.default_priors(X, np.arange(8.0), 2, concomitant=W)
    record = priors.describe_priors(
        prior,
        feature_names=["x", "w"],
        shared=[False, True],
        shared_intercept=True,
        concomitant_names=["z"],
    )
    # the weights are a softmax of the concomitant model: no prior of their own
    assert _rows(record, "weights") == []
    assert [r["component"] for r in _rows(record, "intercept")] == ["shared"]
    assert [(r["feature"], r["component"]) for r in _rows(record, "coef")] == [
        ("x", None),
        ("w", "shared"),
    ]
    (intercept,) = _rows(record, "concomitant_intercept")
    (coef,) = _rows(record, "concomitant_coef")
    assert coef["feature"] == "z" and coef["distribution"] == "Normal"
    assert coef["arguments"]["sigma"] == pytest.approx(float(prior["concomitant_coef"]["sigma"][0]))
    assert intercept["arguments"]["sigma"] == pytest.approx(
        float(prior["concomitant_intercept"]["sigma"])
    )
    with pytest.raises(ValueError, match="one entry per feature"):
        priors.describe_priors(prior, feature_names=["x", "w"], shared=[True])
