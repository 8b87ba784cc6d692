"""The chapter preamble: threads, seeds, plotting setup and one banner line."""

import torch

from nbhelpers.chapter import start_chapter


def test_start_chapter_sets_threads_seeds_and_prints_one_banner_line(
    monkeypatch, capsys
):
    monkeypatch.setenv("NBHELPERS_DEVICE", "cpu")
    monkeypatch.setenv("NBHELPERS_PROFILE", "quick")
    monkeypatch.setenv("NBHELPERS_THREADS", "1")
    threads = torch.get_num_threads()
    try:
        device = start_chapter("embedded (test data)", seed=3)
        assert device == torch.device("cpu") and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    first = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(first, torch.rand(3))
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    assert (
        line.startswith("device: cpu | profile: quick | torch ")
        and "data: embedded (test data)" in line
    )
