"""Grouping: sums per group and back to rows (bayes_mlr.core.grouping)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr.core.grouping import Grouping, group_constant


def test_sum_expand_first_against_a_loop():
    rng = np.random.default_rng(0)
    labels = rng.choice(["b", "a", "c"], size=50)
    rows = rng.normal(size=(50, 3))
    g = Grouping(labels, 50)
    assert g.n_groups == 3 and list(g.labels) == ["a", "b", "c"]
    expected = np.array([rows[labels == lab].sum(axis=0) for lab in g.labels])
    np.testing.assert_allclose(g.sum(rows), expected, rtol=1e-12)  # summation order only
    np.testing.assert_array_equal(g.expand(np.arange(3.0))[labels == "c"], 2.0)
    np.testing.assert_array_equal(g.sizes(), [np.sum(labels == lab) for lab in g.labels])
    np.testing.assert_array_equal(g.first(rows), [rows[labels == lab][0] for lab in g.labels])


def test_no_groups_is_the_identity():
    g = Grouping(None, 4)
    x = np.arange(8.0).reshape(4, 2)
    assert g.trivial and g.n_groups == 4
    assert g.sum(x) is x and g.expand(x) is x
    np.testing.assert_array_equal(g.sizes(), 1)


@pytest.mark.parametrize(
    ("labels", "match"),
    [(np.zeros(3), "shape"), (np.array([1.0, np.nan, 2.0, 2.0]), "NaN"), ([1, None, 2, 2], "None")],
)
def test_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        Grouping(labels, 4)


def test_group_constant_names_the_group():
    g = Grouping(np.array([7, 7, 8, 8]), 4)
    np.testing.assert_array_equal(group_constant(g, np.array([1.0, 1.0, 2.0, 2.0]), "w"), [1, 2])
    with pytest.raises(ValueError, match="w varies within group 8"):
        group_constant(g, np.array([1.0, 1.0, 2.0, 3.0]), "w")
