"""Steering vectors (provenance, save/load refusal), fitting, sklearn probes, layer sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_extract import make_traces

import probes
from probes import REST, ActivationTable, Site


def synthetic_table(
    n: int = 60, d: int = 16, seed: int = 0
) -> tuple[ActivationTable, torch.Tensor]:
    """Site 0 separates 'check' from REST along a known direction; site 1 is noise."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.zeros(d)
    direction[0] = 3.0
    labels, rows0, rows1, ids = [], [], [], []
    for i in range(n):
        for lab in ("check", REST, "step"):
            x = torch.randn(d, generator=g)
            if lab == "check":
                x = x + direction
            rows0.append(x)
            rows1.append(torch.randn(d, generator=g))
            labels.append(lab)
            ids.append(i)
    acts = {Site(0): torch.stack(rows0), Site(1): torch.stack(rows1)}
    return ActivationTable(acts, labels, torch.tensor(ids), "decision"), direction


def test_diffmean_exact_and_baselines():
    t, _ = synthetic_table()
    x = t.acts[Site(0)]
    m = lambda lab: x[[i for i, lab2 in enumerate(t.labels) if lab2 == lab]].mean(0)  # noqa: E731
    v = probes.fit_diffmean(t, "check", sites=Site(0))
    torch.testing.assert_close(v.vector, m("check") - m(REST))
    v = probes.fit_diffmean(t, "check", sites=Site(0), baseline="step")
    torch.testing.assert_close(v.vector, m("check") - m("step"))
    v = probes.fit_diffmean(t, "check", sites=Site(0), baseline="all")
    both = x[[i for i, lab in enumerate(t.labels) if lab != REST and lab != "check"]].mean(0)
    torch.testing.assert_close(v.vector, m("check") - both)
    v = probes.fit_diffmean(t, "check", sites=Site(0), norm_match=True)
    assert v.vector.norm().item() == pytest.approx(m("check").norm().item(), rel=1e-5)
    assert v.n_examples == {"label": 60, "baseline": 60} and v.baseline == "rest"


@pytest.mark.parametrize("method", probes.METHODS)
def test_every_method_recovers_the_planted_direction(method):
    t, direction = synthetic_table(n=120)
    v = probes.fit(t, "check", method=method, sites=[Site(0)])
    cos = torch.nn.functional.cosine_similarity(v.vector, direction, dim=0)
    assert cos > 0.9, f"{method}: cosine {cos:.2f}"
    assert v.method == method


def test_label_and_baseline_masks():
    from probes.fit import label_and_baseline

    t, _ = synthetic_table(n=3)  # rows cycle check, REST, step
    pos, neg = label_and_baseline(t, "check", "rest")
    assert pos.tolist() == [True, False, False] * 3 and neg.tolist() == [False, True, False] * 3
    pos, neg = label_and_baseline(t, "check", "all")  # every other labelled row, REST out
    assert neg.tolist() == [False, False, True] * 3
    pos, neg = label_and_baseline(t, "step", "check")
    assert pos.tolist() == [False, False, True] * 3 and neg.tolist() == [True, False, False] * 3


def test_fit_bad_inputs():
    t, _ = synthetic_table(n=5)
    with pytest.raises(ValueError, match="unknown label 'verify'"):
        probes.fit_diffmean(t, "verify")
    with pytest.raises(ValueError, match="unknown baseline"):
        probes.fit_diffmean(t, "check", baseline="nothing")
    with pytest.raises(ValueError, match="is the label itself"):
        probes.fit_diffmean(t, "check", baseline="check")
    only = t.select(t.mask("check"))
    with pytest.raises(ValueError, match="REST rows"):
        probes.fit_diffmean(only, "check")
    with pytest.raises(ValueError, match="all rows are in one class"):
        probes.fit_diffmean(only, "check", baseline="all")
    with pytest.raises(ValueError, match="unknown method"):
        probes.fit(t, "check", method="svm")


def test_vector_save_load_and_refusals(model_dir, tmp_path):
    h = probes.wrap(model_dir("llama"))
    t = probes.extract(h, make_traces(8), [Site(1), Site(2, "resid_pre")], progress=False)
    v = probes.fit_diffmean(t, "check")
    p = v.save(tmp_path / "check")
    assert p.name == "check.safetensors"
    w = probes.SteeringVector.load(p, model=h)
    assert w.label == "check" and w.method == "diffmean" and w.pooling == "decision"
    assert w.data_hash == probes.data_hash(make_traces(8))
    assert w.fingerprint["weights"] == h.fingerprint.weights
    assert set(w.norms) == {"blocks.1.hook_resid_post", "blocks.2.hook_resid_pre"}
    for s in v.sites:
        torch.testing.assert_close(w[s], v[s])
    other = probes.wrap(model_dir("llama", seed=1))
    with pytest.raises(ValueError, match="fitted on .*llama3_0.*not on .*llama3_1"):
        probes.SteeringVector.load(p, model=other)
    probes.SteeringVector.load(p, model=other, check=False)  # explicit opt-out works
    wide = probes.wrap(model_dir("llama", d_model=64))
    with pytest.raises(ValueError, match="width 32 .* d_model 64"):
        probes.SteeringVector.load(p, model=wide)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="no steering-vector metadata"):
        probes.SteeringVector.load(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        probes.SteeringVector.load(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="NaN/inf"):
        probes.SteeringVector({Site(0): torch.tensor([float("nan"), 1.0])}, "x", "diffmean")


def test_diffmean_probe_is_a_sklearn_estimator():
    t, _ = synthetic_table(n=80)
    keep = t.mask("check") | t.mask(REST)
    X = t.acts[Site(0)][keep].numpy()
    y = t.mask("check")[keep].numpy().astype(int)
    probe = probes.DiffMeanProbe()
    assert probe.fit(X, y) is probe and probe.coef_.shape == (16,)
    assert (probe.predict(X) == y).mean() > 0.9
    assert cross_val_score(make_pipeline(StandardScaler(), clone(probe)), X, y, cv=5).mean() > 0.9
    gs = GridSearchCV(probes.DiffMeanProbe(), {"normalize": [True, False]}, cv=3).fit(X, y)
    assert gs.best_score_ > 0.9
    with pytest.raises(ValueError, match="at least 2 classes, got 1 class"):
        probes.DiffMeanProbe().fit(X, np.zeros(len(y)))
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(probes.DiffMeanProbe(), method)(X)
    with pytest.raises(ValueError, match="features"):
        probe.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        probes.DiffMeanProbe().fit(np.where(X > 2, np.nan, X), y)


def test_diffmean_probe_one_vs_rest_on_three_classes():
    t, _ = synthetic_table(n=80)
    X = t.acts[Site(0)].numpy().astype(np.float64)
    labels = np.array(t.labels)
    X[labels == "step", 1] += 3.0  # a second planted direction for 'step'
    probe = probes.DiffMeanProbe().fit(X, labels)
    assert list(probe.classes_) == sorted({REST, "check", "step"})
    assert probe.coef_.shape == (3, 16) and probe.intercept_.shape == (3,)
    k = list(probe.classes_).index("check")
    for j in range(3):  # row k is the unit direction from the other rows' mean to class k
        pos = labels == probe.classes_[j]
        d = X[pos].mean(0) - X[~pos].mean(0)
        np.testing.assert_allclose(probe.coef_[j], d / np.linalg.norm(d), rtol=1e-6)
    assert probe.coef_[k].argmax() == 0
    assert (probe.predict(X) == labels).mean() > 0.7
    proba = probe.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert (probe.classes_[proba.argmax(1)] == probe.predict(X)).all()


@parametrize_with_checks([probes.DiffMeanProbe(), probes.DiffMeanProbe(normalize=False)])
def test_diffmean_probe_passes_sklearn_check_estimator(estimator, check):
    check(estimator)


def test_layer_sweep_separates_signal_from_baselines(tmp_path):
    t, _ = synthetic_table(n=60)
    res = probes.layer_sweep(t, labels=["check"], n_boot=50, n_random=10, seed=0)
    by_site = {r.site: r for r in res.rows}
    good, noise = by_site["blocks.0.hook_resid_post"], by_site["blocks.1.hook_resid_post"]
    assert good.auroc > 0.9 and good.auroc_low > good.shuffled_high
    assert good.auroc > good.random_dir
    assert abs(noise.auroc - 0.5) < 0.15 and abs(good.shuffled - 0.5) < 0.15
    assert res.best_site("check") == Site(0)
    assert res.to_dict()["rows"][0]["label"] == "check"
    again = probes.layer_sweep(t, labels=["check"], n_boot=50, n_random=10, seed=0)
    assert again.rows == res.rows  # same seed, same numbers
    import matplotlib

    matplotlib.use("Agg")
    ax = probes.plot_sweep(res)
    ax.figure.savefig(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 0
    few = t.select(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="needs at least 3 of each"):
        probes.layer_sweep(few, labels=["check"])


def test_layer_sweep_refuses_too_few_rows_per_class_and_warns_on_few():
    t, _ = synthetic_table(n=60)
    rows = lambda n: torch.tensor([i for i in range(3 * n) if i % 3 != 2])  # noqa: E731
    two = t.select(rows(2))  # 2 'check' rows vs 2 REST rows
    with pytest.raises(ValueError, match=r"'check' has 2 examples vs 2 baseline.*at least 3"):
        probes.layer_sweep(two, labels=["check"])
    with pytest.raises(ValueError, match="at least 3"):  # every label checked before fitting
        probes.layer_sweep(t.select(torch.arange(6)), labels=["check", "step"])
    five = t.select(rows(5))
    with pytest.warns(probes.SmallSampleWarning, match="'check' has 5 examples vs 5"):
        res = probes.layer_sweep(five, labels=["check"], sites=[Site(0)], n_boot=20, n_random=5)
    assert res.rows[0].n_pos == res.rows[0].n_neg == 5 and res.rows[0].auroc > 0.5
    with pytest.raises(ValueError, match="at least 10"):  # the warning, made a refusal
        probes.layer_sweep(five, labels=["check"], min_per_class=10)
    with pytest.warns(probes.SmallSampleWarning):
        knowingly = probes.layer_sweep(two, labels=["check"], min_per_class=2, n_boot=5)
    assert len(knowingly.rows) == 2
    for bad, msg in [(dict(min_per_class=1), "min_per_class"), (dict(folds=1), "folds")]:
        with pytest.raises(ValueError, match=msg):
            probes.layer_sweep(t, labels=["check"], **bad)


def test_newcomer_ten_lines(model_dir, tmp_path):
    """The README's promise: wrap, extract two labels, fit, save, load back."""
    h = probes.wrap(model_dir("qwen2"))
    table = probes.extract(h, make_traces(12), sites=[Site(1)], pooling="decision", progress=False)
    vec = probes.fit_diffmean(table, "check", baseline="step")
    path = vec.save(tmp_path / "check.safetensors")
    back = probes.SteeringVector.load(path, model=h)
    torch.testing.assert_close(back.vector, vec.vector)


def test_vector_check_on_a_bare_hf_model(model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    h = probes.wrap(model_dir("llama"))
    t = probes.extract(h, make_traces(6), [Site(1)], progress=False)
    p = probes.fit_diffmean(t, "check").save(tmp_path / "v")
    bare = AutoModelForCausalLM.from_pretrained(model_dir("llama"))
    assert probes.SteeringVector.load(p, model=bare).label == "check"


def test_layer_sweep_takes_one_site_given_as_a_string_whole():
    t, _ = synthetic_table(n=20)
    acts = {Site(1): t.acts[Site(1)], Site(2): t.acts[Site(1)], Site(12): t.acts[Site(0)]}
    t12 = ActivationTable(acts, t.labels, t.trace_ids, "decision")
    one = probes.layer_sweep(t12, sites="12", labels=["check"], n_boot=20, n_random=2, seed=0)
    listed = probes.layer_sweep(t12, sites=["12"], labels=["check"], n_boot=20, n_random=2)
    assert [r.site for r in one.rows] == [r.site for r in listed.rows] == [str(Site(12))]


def test_concatenated_tables_keep_their_traces_apart_and_refuse_mixtures():
    t, _ = synthetic_table(n=4)
    both = ActivationTable.concat([t, t])
    assert len(set(both.trace_ids.tolist())) == 2 * len(set(t.trace_ids.tolist()))
    other = ActivationTable(t.acts, t.labels, t.trace_ids, "mean")
    with pytest.raises(ValueError, match="pooling"):
        ActivationTable.concat([t, other])
    model_b = ActivationTable(t.acts, t.labels, t.trace_ids, "decision", {"weights": "b"})
    with pytest.raises(ValueError, match="fingerprint"):
        ActivationTable.concat([t, model_b])


def test_resampled_aurocs_refuse_scores_that_are_not_finite():
    from probes.auroc import resampled_aurocs

    with pytest.raises(ValueError, match="finite"):
        resampled_aurocs([1, 0, 1, 0], [0.1, 0.2, np.nan, 0.3], np.arange(4), np.arange(4)[None])
