"""``python -m nbhelpers.examples.mnist``: a tiny run in-process, its errors, and two processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nbhelpers.examples import mnist as example
from nbhelpers.recipes.mnist import MnistRecipe
from nbhelpers.train.checkpoint import read_meta

REPO = Path(__file__).resolve().parents[1]
RESULT = re.compile(
    r"valid_accuracy=([0-9.]+) valid_loss=([0-9.]+) seconds=([0-9.]+) processes=(\d+)"
)
TINY = [
    "--epochs",
    "1",
    "--train-size",
    "512",
    "--valid-size",
    "256",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> dict[str, str]:
    """A fresh data folder; the mirror if the environment names one, else the offline digits."""
    env = {"NBHELPERS_DATA": str(tmp_path / "data"), "TQDM_DISABLE": "1"}
    if not os.environ.get("NBHELPERS_DATA_MIRROR"):
        env["NBHELPERS_OFFLINE"] = "1"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_a_tiny_run_prints_its_accuracy_and_learns(data_env, capsys):
    result = example.run(TINY)
    out = capsys.readouterr().out
    match = RESULT.search(out)
    assert match, out
    accuracy, processes = float(match.group(1)), int(match.group(4))
    assert accuracy == pytest.approx(result.valid_log["accuracy"][-1], abs=1e-4)
    assert processes == 1 and result.global_step == 16  # 512 / 32
    assert accuracy > 0.3  # chance is 0.1
    assert out.startswith("device: cpu | processes: 1")


def test_main_returns_zero_and_writes_a_checkpoint_of_its_recipe(
    data_env, tmp_path, capsys
):
    checkpoint = tmp_path / "mnist.pt"
    assert example.main([*TINY, "--checkpoint", str(checkpoint)]) == 0
    assert checkpoint.is_file()
    assert f"checkpoint: {checkpoint}" in capsys.readouterr().out
    meta = read_meta(checkpoint)
    assert meta["recipe"] == "MnistRecipe" and meta["fields"]["train_size"] == 512


def test_a_run_stopped_after_one_epoch_resumes_from_its_checkpoint(
    data_env, tmp_path, capsys
):
    checkpoint = tmp_path / "mnist.pt"
    two = [
        "--epochs",
        "2",
        "--train-size",
        "256",
        "--valid-size",
        "64",
        "--device",
        "cpu",
        "--quiet",
    ]
    first = example.run([*two, "--checkpoint", str(checkpoint), "--stop-after", "1"])
    assert first.stop_reason == "stop_after=1" and first.epoch == 1
    resumed = example.run([*two, "--checkpoint", str(checkpoint)])
    straight = example.run(two)
    assert resumed.stop_reason is None
    assert resumed.global_step == straight.global_step == 16
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert (a - b).abs().max() <= 1e-6


def test_a_checkpoint_in_a_missing_folder_stops_the_program_before_any_work(
    data_env, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(
        MnistRecipe, "prepare", lambda self: pytest.fail("data was loaded")
    )
    with pytest.raises(SystemExit) as stop:
        example.main([*TINY, "--checkpoint", str(tmp_path / "no" / "such" / "ck.pt")])
    assert stop.value.code == 2
    assert "--checkpoint" in (err := capsys.readouterr().err) and "no/such" in err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--precision", "16", "--device", "cpu"],
            "precision='16' needs a CUDA device",
        ),
        (["--cuda-graph", "--device", "cpu"], "cuda_graph=True needs a CUDA device"),
        (["--device", "tpu"], "--device tpu is not a device name"),
        (["--device", "cuda:99"], "--device cuda:99"),
        (["--epochs", "0", "--device", "cpu"], "epochs must be an int >= 1"),
        (["--train-size", "-5", "--device", "cpu"], "train_size must be an int >= 1"),
        (["--stop-after", "0", "--device", "cpu"], "--stop-after must be >= 1"),
        (["--threads", "0", "--device", "cpu"], "--threads must be >= 1"),
        (["--precision", "8"], "invalid choice"),
    ],
)
def test_bad_arguments_stop_with_a_clear_message(arguments, message, capsys):
    with pytest.raises(SystemExit) as stop:
        example.main(arguments)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_resident_data_is_refused_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        example.main(["--resident", "--device", "cpu"])
    assert "resident=True cannot be combined with torchrun" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_under_torchrun_train_together_and_only_rank_zero_prints(
    tmp_path,
):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }
    env["NBHELPERS_DATA"] = str(tmp_path / "data")
    if not env.get("NBHELPERS_DATA_MIRROR"):
        env["NBHELPERS_OFFLINE"] = "1"

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "nbhelpers.examples.mnist",
        *TINY,
    ]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    matches = RESULT.findall(result.stdout)
    assert len(matches) == 1, result.stdout  # rank 0 only
    accuracy, _, _, processes = matches[0]
    assert int(processes) == 2
    assert float(accuracy) > 0.3
    assert result.stdout.count("device: cpu | processes: 2") == 1
