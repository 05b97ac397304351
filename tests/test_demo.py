"""Tests for ``fastconv demo`` (fastconv._demo); they run a few batches only."""

import sys

import numpy as np
import pytest

from fastconv import _demo


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        _demo.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--backend", "--seed", "--threads"):
        assert flag in text
    assert 'pip install "fastconv[demo]"' in text


def test_console_script_dispatches_to_the_demo(capsys):
    from fastconv.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    assert "usage: fastconv demo" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--backend", "torch"], ["--batch-size", "x"]])
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        _demo.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_missing_scikit_learn_is_a_clear_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` raise ImportError
    assert _demo.main([]) == 2
    assert 'pip install "fastconv[demo]"' in capsys.readouterr().err


def test_too_many_threads_is_rejected(capsys):
    pytest.importorskip("sklearn")
    assert _demo.main(["--threads", "100000"]) == 2
    assert "--threads must be at most" in capsys.readouterr().err


def test_data_split_is_80_20_and_standardised():
    pytest.importorskip("sklearn")
    x_train, x_test, y_train, y_test = _demo.load_data(0)
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert abs(x_train.mean()) < 1e-5 and abs(x_train.std() - 1) < 1e-5
    assert set(np.unique(y_test)) == set(range(10))


def test_a_few_batches_reduce_the_loss():
    pytest.importorskip("sklearn")
    x_train, _, y_train, _ = _demo.load_data(0)
    model, loss_fn, opt = _demo._make(0, "numba")
    losses, _ = _demo.train_epoch(model, loss_fn, opt, x_train, y_train, 32,
                                  np.random.default_rng(0), max_batches=25)
    assert len(losses) == 25
    assert np.log(10) - 0.2 < losses[0] < np.log(10) + 0.2  # chance level at the start
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5])


def test_progress_bar_reports_loss_and_images_per_second(capsys):
    bar = _demo.ProgressBar("epoch 1/2", total=4, stream=sys.stdout)
    bar.update(2, 1.5, 1000.0)  # not a terminal: only the final line is written
    bar.update(4, 0.25, 12345.0, final=True)
    out = capsys.readouterr().out
    assert out == "epoch 1/2 |########################| 4/4 batches  loss 0.2500  12,345 images/s\n"


def test_main_end_to_end_on_one_short_epoch(capsys):
    pytest.importorskip("sklearn")
    assert _demo.main(["--epochs", "1", "--batch-size", "128"]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1 |" in captured.err and "images/s" in captured.err
    out = captured.out
    assert "test accuracy: " in out
    assert "time per epoch: numba " in out and "extrapolated" in out
    assert "speed-up numba vs numpy: " in out
    gap = float(out.split("agree to ")[1].split()[0])
    assert gap < 1e-4
