import numpy as np
import pytest
from matplotlib.figure import Figure

from rlvr.measures.formats import (
    FormatShares,
    format_shares,
    format_shares_from_log,
    plot_format_shares,
)


def label(text: str) -> str:
    if text.startswith("def "):
        return "code"
    if "\\boxed" in text:
        return "boxed"
    return "prose"


COMPLETIONS = {
    # Steps arrive out of order; the result is sorted by step.
    20: ["\\boxed{1}"] * 10,
    0: ["def f(): pass", "\\boxed{2}", "so the answer is 3", "the answer is 4"],
    10: ["\\boxed{1}"] * 9 + ["def g(): pass"],
}


def test_shares_entropy_and_collapse():
    fs = format_shares(COMPLETIONS, label)
    assert isinstance(fs, FormatShares)
    np.testing.assert_array_equal(fs.steps, [0, 10, 20])
    assert fs.labels == ("boxed", "code", "prose")
    np.testing.assert_array_equal(fs.counts, [[1, 1, 2], [9, 1, 0], [10, 0, 0]])
    np.testing.assert_allclose(fs.shares, [[0.25, 0.25, 0.5], [0.9, 0.1, 0.0], [1.0, 0.0, 0.0]])
    # H(1/4, 1/4, 1/2) = 1.5 bits; H(0.9, 0.1) = 0.469 bits; a single format = 0 bits.
    h2 = -(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1))
    np.testing.assert_allclose(fs.entropy, [1.5, h2, 0.0])
    assert fs.collapse_step() == 10
    assert fs.collapse_step(0.95) == 20
    assert fs.collapse_step(0.5) == 0
    assert fs.dominant() == ["prose", "boxed", "boxed"]
    with pytest.raises(ValueError, match="threshold=0 must lie in"):
        fs.collapse_step(0)


def test_collapse_never_reached_is_none():
    fs = format_shares({1: ["a", "b"], 2: ["a", "b", "a", "b"]}, lambda s: s)
    assert fs.collapse_step(0.9) is None
    np.testing.assert_allclose(fs.entropy, [1.0, 1.0])


def test_fixed_labels_order_and_unknown_label():
    fs = format_shares(COMPLETIONS, label, labels=["prose", "boxed", "code", "table"])
    assert fs.labels == ("prose", "boxed", "code", "table")
    np.testing.assert_array_equal(fs.counts[0], [2, 1, 1, 0])
    with pytest.raises(ValueError, match=r"format 'code' at step 0 is not in labels"):
        format_shares(COMPLETIONS, label, labels=["boxed", "prose"])


def test_empty_inputs_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        format_shares({}, label)
    with pytest.raises(ValueError, match="step 3 has no completions"):
        format_shares({1: ["x"], 3: []}, label)
    with pytest.raises(TypeError, match="must return a format name"):
        format_shares({1: ["x"]}, lambda s: None)
    empty_log = tmp_path / "empty.jsonl"
    empty_log.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        format_shares_from_log(empty_log)


def test_log_round_trip(tmp_path):
    fs = format_shares(COMPLETIONS, label)
    path = tmp_path / "formats.jsonl"
    fs.to_log(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert lines[0] == '{"step": 0, "formats": {"boxed": 1, "code": 1, "prose": 2}}'
    back = format_shares_from_log(path)
    assert back.labels == fs.labels
    np.testing.assert_array_equal(back.steps, fs.steps)
    np.testing.assert_array_equal(back.counts, fs.counts)
    np.testing.assert_allclose(back.entropy, fs.entropy)


def test_log_written_by_trainer(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"step": 5, "formats": {"boxed": 3, "prose": 1}}\n\n{"step": 1, "formats": {"prose": 4}}\n'
    )
    fs = format_shares_from_log(path)
    np.testing.assert_array_equal(fs.steps, [1, 5])
    np.testing.assert_allclose(fs.shares, [[0.0, 1.0], [0.75, 0.25]])
    with pytest.raises(ValueError, match="'boxed' at step 5 is not in labels"):
        format_shares_from_log(path, labels=["prose"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1, "formats": {"a": 1}}\n{"step": 1, "formats": {"a": 2}}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: step 1 appears twice"):
        format_shares_from_log(bad)
    bad.write_text('{"step": 1, "formats": {"a": -1}}\n')
    with pytest.raises(ValueError, match=r"count -1 for format 'a' must be an int >= 0"):
        format_shares_from_log(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        format_shares_from_log(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("kind", ["area", "lines"])
def test_plot_format_shares(kind):
    fs = format_shares(COMPLETIONS, label)
    given = Figure().subplots()
    ax = plot_format_shares(fs, ax=given, kind=kind)
    assert ax is given
    assert ax.get_xlabel() == "RL step"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(fs.labels)
    with pytest.raises(ValueError, match="kind='bars' is not supported"):
        plot_format_shares(fs, ax=given, kind="bars")


def test_plot_format_shares_makes_axes():
    import matplotlib.pyplot as plt

    ax = plot_format_shares(format_shares(COMPLETIONS, label))
    assert len(ax.collections) == 3  # one filled band per label
    plt.close(ax.figure)
