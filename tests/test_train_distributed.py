"""Two CPU processes under torchrun (gloo): sharding, DDP and all-reduced metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import distributed_script as script
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Subset

from nbhelpers.train import Trainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> tuple[list[dict], str]:
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NBHELPERS_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(REPO / "tests" / "distributed_script.py"),
        str(out),
    ]
    result = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    states = [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    return states, result.stdout


def single_process_evaluate(state_dict: dict, dataset) -> dict[str, float]:
    model = script.make_model()
    model.load_state_dict(state_dict)
    trainer = Trainer(model, None, F.cross_entropy, device="cpu", verbose=False)
    return trainer.evaluate(DataLoader(dataset, batch_size=5))


@pytest.mark.slow
def test_two_processes_shard_train_and_agree_with_one_process_on_the_whole_valid_set(
    two_process_run,
):
    states, stdout = two_process_run
    assert [s["world_size"] for s in states] == [2, 2] and [
        s["rank"] for s in states
    ] == [0, 1]
    # each process trained on its half: 32 examples / 4 per batch = 8 steps per epoch
    assert all(s["global_step"] == script.EPOCHS * 8 for s in states)
    # DDP kept the replicas identical, and the all-reduced logs agree
    for a, b in zip(states[0]["model"].values(), states[1]["model"].values()):
        assert torch.equal(a, b)
    assert states[0]["train_log"] == states[1]["train_log"]
    assert states[0]["valid_log"] == states[1]["valid_log"]
    assert stdout.count("valid_accuracy ") == script.EPOCHS  # only rank 0 prints

    _, valid = script.make_datasets()
    expected = single_process_evaluate(states[0]["model"], valid)
    for state in states:
        assert state["evaluate"]["loss"] == pytest.approx(expected["loss"], rel=1e-6)
        assert state["evaluate"]["accuracy"] == pytest.approx(
            expected["accuracy"], abs=1e-12
        )
        assert state["valid_log"]["loss"][-1] == pytest.approx(
            expected["loss"], rel=1e-6
        )
    # counting DistributedSampler's padding copy (example 0 again) would give another answer
    padded = single_process_evaluate(
        states[0]["model"], ConcatDataset([valid, Subset(valid, [0])])
    )
    assert padded["loss"] != pytest.approx(expected["loss"], rel=1e-6)


LAUNCH = {
    "WORLD_SIZE": "2",
    "RANK": "0",
    "LOCAL_RANK": "0",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29555",
}


def test_join_process_group_is_a_no_op_for_a_single_process(monkeypatch):
    from nbhelpers.train import join_process_group

    for name in LAUNCH:
        monkeypatch.delenv(name, raising=False)
    assert join_process_group("cpu") is False
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert join_process_group("cpu") is False


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("WORLD_SIZE", "two", "WORLD_SIZE='two' is not an integer"),
        ("WORLD_SIZE", "0", "WORLD_SIZE='0' must be >= 1"),
        ("RANK", "2", r"RANK='2' must be in 0\.\.1"),
        ("RANK", None, "RANK is not set"),
        ("LOCAL_RANK", "-1", "LOCAL_RANK='-1' must be in"),
        ("MASTER_ADDR", "", "MASTER_ADDR='' must be a host name"),
        ("MASTER_PORT", "70000", "MASTER_PORT='70000' must be a port number"),
        ("MASTER_PORT", None, "MASTER_PORT is not set"),
    ],
)
def test_join_process_group_names_a_bad_launch_variable(
    monkeypatch, name, value, message
):
    from nbhelpers.train import join_process_group

    for key, setting in LAUNCH.items():
        monkeypatch.setenv(key, setting)
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        join_process_group("cpu", timeout_s=1.0)
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), True, "60"])
def test_join_process_group_names_a_bad_timeout(timeout):
    from nbhelpers.train import join_process_group

    with pytest.raises(
        ValueError,
        match=f"timeout_s must be a finite number of seconds > 0, got {timeout!r}",
    ):
        join_process_group("cpu", timeout_s=timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_join_process_group_with_stale_variables_gives_up_after_the_timeout(
    monkeypatch,
):
    from nbhelpers.train.distributed import ProcessGroupError, join_process_group

    port = free_port()
    for key, setting in {**LAUNCH, "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, setting)
    with pytest.raises(
        ProcessGroupError,
        match=f"WORLD_SIZE=2 RANK=0 .*MASTER_PORT={port} within 1 s.*stale",
    ):
        # rank 0 waits for a rank 1 that never comes
        join_process_group("cpu", timeout_s=1.0)
    assert not torch.distributed.is_initialized()
