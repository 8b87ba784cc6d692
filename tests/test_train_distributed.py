"""Two CPU processes under torchrun (gloo): sharding, DDP and all-reduced metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Subset

sys.path.insert(0, str(Path(__file__).parent))
import distributed_script as script  # noqa: E402

from nbhelpers.train import Trainer  # noqa: E402

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
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(REPO / "tests" / "distributed_script.py"), str(out),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    states = [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    return states, result.stdout


def single_process_evaluate(state_dict: dict, dataset) -> dict[str, float]:
    model = script.make_model()
    model.load_state_dict(state_dict)
    trainer = Trainer(model, None, F.cross_entropy, device="cpu", verbose=False)
    return trainer.evaluate(DataLoader(dataset, batch_size=5))


@pytest.mark.slow
def test_two_processes_shard_train_and_agree_with_one_process_on_the_whole_valid_set(two_process_run):
    states, stdout = two_process_run
    assert [s["world_size"] for s in states] == [2, 2] and [s["rank"] for s in states] == [0, 1]
    # each process trained on its half: 32 examples / 4 per batch = 8 steps per epoch
    assert all(s["global_step"] == script.EPOCHS * 8 for s in states)
    # DDP kept the replicas identical, and the all-reduced logs agree
    for a, b in zip(states[0]["model"].values(), states[1]["model"].values()):
        assert torch.equal(a, b)
    assert states[0]["train_log"] == states[1]["train_log"]
    assert states[0]["valid_log"] == states[1]["valid_log"]
    assert stdout.count("[Epoch:") == script.EPOCHS  # only rank 0 prints

    _, valid = script.make_datasets()
    expected = single_process_evaluate(states[0]["model"], valid)
    for state in states:
        assert state["evaluate"]["loss"] == pytest.approx(expected["loss"], rel=1e-6)
        assert state["evaluate"]["accu"] == pytest.approx(expected["accu"], abs=1e-12)
        assert state["valid_log"]["loss"][-1] == pytest.approx(expected["loss"], rel=1e-6)
    # counting DistributedSampler's padding copy (example 0 again) would give another answer
    padded = single_process_evaluate(states[0]["model"], ConcatDataset([valid, Subset(valid, [0])]))
    assert padded["loss"] != pytest.approx(expected["loss"], rel=1e-6)
