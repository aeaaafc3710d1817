"""Every accepted form of steering vectors becomes one form, label -> {Site: vector}."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import probes
from probes import Site
from steering import Steer
from steering.vector_groups import as_vector_groups

V = torch.arange(4, dtype=torch.float64)
W = torch.ones(4)


def _same(groups, want):
    assert list(groups) == list(want)
    for label, sites in want.items():
        assert list(groups[label]) == list(sites)
        for s, v in sites.items():
            got = groups[label][s]
            assert got.dtype == torch.float32 and got.device.type == "cpu"
            assert torch.equal(got, v.float())


def test_every_form_gives_label_to_site_vectors():
    sv = probes.SteeringVector({Site(1): V, Site(2): W}, label="check", method="diffmean")
    one = SimpleNamespace(site=Site(0), vector=V, label="step")
    _same(
        as_vector_groups({Site(1): V, "2.resid_pre": W}),
        {None: {Site(1): V, Site(2, "resid_pre"): W}},
    )
    _same(as_vector_groups(sv), {"check": {Site(1): V, Site(2): W}})
    _same(as_vector_groups(one), {"step": {Site(0): V}})
    _same(as_vector_groups([sv, one]), {"check": {Site(1): V, Site(2): W}, "step": {Site(0): V}})
    _same(
        as_vector_groups({"a": {1: V}, "b": [one, {Site(3): W}]}),
        {"a": {Site(1): V}, "b": {Site(0): V, Site(3): W}},
    )
    assert list(Steer(sv).groups) == ["check"]  # Steer keeps the converted form


@pytest.mark.parametrize(
    ("given", "error", "match"),
    [
        ({}, ValueError, "no steering vectors given"),
        ([], ValueError, "no steering vectors given"),
        ({Site(1): V, "x": W}, ValueError, "only sites as keys"),
        ({Site(1): V, "1.resid_post": W}, ValueError, "given twice at"),
        ([{Site(1): V}], TypeError, "must hold objects with .vectors"),
        ({"a": 3}, TypeError, "for 'a' from a int"),
        ("nope", TypeError, "cannot read steering vectors from a str"),
        ({Site(1): torch.ones(2, 2)}, ValueError, "must be 1-D"),
        ({Site(1): torch.tensor([1.0, float("nan")])}, ValueError, "NaN/inf"),
    ],
)
def test_anything_else_is_refused_with_what_to_give(given, error, match):
    with pytest.raises(error, match=match):
        as_vector_groups(given)
