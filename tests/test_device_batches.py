"""DeviceBatches: every example once per epoch, order and transform draws a function of (seed, epoch),
batches that never alias the data set, and arguments checked."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nbhelpers.data import DeviceBatches
from nbhelpers.data.loaders import epoch_generator
from nbhelpers.data.pipeline import CROP, BatchAugment, centre_crop


def indexed(n: int, features: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows that hold their own index (so a batch tells which examples it holds) and labels 2i + 1."""
    inputs = (
        torch.arange(n, dtype=torch.float32).view(n, 1).expand(n, features).contiguous()
    )
    return inputs, torch.arange(n) * 2 + 1


def order(batches: DeviceBatches) -> list[int]:
    return [int(v) for x, _ in batches for v in x[:, 0].tolist()]


# ---- what each epoch holds -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 12),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**40),
)
def test_each_epoch_yields_every_example_once_with_its_target(
    n, batch_size, shuffle, drop_last, seed
):
    if drop_last and n < batch_size:
        return  # refused at construction (tested below)
    inputs, targets = indexed(n)
    batches = DeviceBatches(
        inputs, targets, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
    )
    seen = []
    for x, y in batches:
        assert len(x) == len(y) <= batch_size
        # every target stays with its input
        assert torch.equal(y, x[:, 0].long() * 2 + 1)
        seen.extend(int(v) for v in x[:, 0])
    expected_len = n // batch_size if drop_last else -(-n // batch_size)
    assert len(batches) == expected_len
    assert len(seen) == (expected_len * batch_size if drop_last else n)
    assert len(set(seen)) == len(seen)
    if not shuffle:
        assert seen == list(range(len(seen)))


def test_without_shuffle_the_order_is_the_stored_order_every_epoch():
    batches = DeviceBatches(*indexed(10), 4)
    assert order(batches) == list(range(10)) == order(batches)
    assert [len(y) for _, y in batches] == [4, 4, 2]


# ---- epochs, seeds and state ---------------------------------------------------------------------


def test_the_order_is_a_function_of_seed_and_epoch():
    def epoch_order(seed: int, epoch: int) -> list[int]:
        batches = DeviceBatches(*indexed(30), 7, shuffle=True, seed=seed)
        batches.set_epoch(epoch)
        return order(batches)

    assert epoch_order(5, 0) == epoch_order(5, 0)
    assert epoch_order(5, 3) == epoch_order(5, 3)
    assert epoch_order(5, 0) != epoch_order(5, 1)
    assert epoch_order(5, 0) != epoch_order(6, 0)
    # neighbouring (seed, epoch) pairs are unrelated streams, not shifted copies
    assert epoch_order(5, 1) != epoch_order(6, 0)


def test_a_plain_loop_gets_a_new_order_every_pass_and_set_epoch_replays_one():
    batches = DeviceBatches(*indexed(30), 8, shuffle=True, seed=1)
    first, second = order(batches), order(batches)
    assert first != second and batches.epoch == 2
    batches.set_epoch(0)
    assert order(batches) == first
    assert order(batches) == second


def test_state_dict_round_trip_resumes_the_sequence_of_epochs():
    batches = DeviceBatches(*indexed(30), 8, shuffle=True, seed=9)
    order(batches)
    state = batches.state_dict()
    assert state == {"seed": 9, "epoch": 1}
    expected = order(batches)
    fresh = DeviceBatches(*indexed(30), 8, shuffle=True, seed=123)
    fresh.load_state_dict(state)
    assert order(fresh) == expected


def test_seed_none_draws_the_base_seed_from_the_global_generator_once():
    torch.manual_seed(0)
    a = DeviceBatches(*indexed(30), 8, shuffle=True)
    torch.manual_seed(0)
    b = DeviceBatches(*indexed(30), 8, shuffle=True)
    c = DeviceBatches(*indexed(30), 8, shuffle=True)
    assert a.seed == b.seed != c.seed
    expected = order(a)
    torch.manual_seed(999)  # later global draws do not matter
    assert order(b) == expected


def test_iteration_does_not_touch_the_global_generator():
    batches = DeviceBatches(
        *indexed(30),
        8,
        shuffle=True,
        seed=0,
        transform=lambda x, g: x + torch.rand(1, generator=g),
    )
    torch.manual_seed(4)
    expected = torch.rand(3)
    torch.manual_seed(4)
    order(batches)
    assert torch.equal(torch.rand(3), expected)


def test_epoch_generator_is_a_cpu_generator_determined_by_its_arguments():
    first = torch.rand(4, generator=epoch_generator(3, 2))
    assert torch.equal(first, torch.rand(4, generator=epoch_generator(3, 2)))
    assert not torch.equal(first, torch.rand(4, generator=epoch_generator(2, 3)))
    assert epoch_generator(0, 0).device.type == "cpu"


# ---- transforms and format -----------------------------------------------------------------------


def test_transform_draws_come_from_the_epoch_generator():
    images = torch.randint(
        0,
        256,
        (20, 3, 52, 52),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(0),
    )
    labels = torch.arange(20)

    def epoch(seed: int, number: int) -> list[torch.Tensor]:
        batches = DeviceBatches(
            images, labels, 6, shuffle=True, seed=seed, transform=BatchAugment()
        )
        batches.set_epoch(number)
        return [x for x, _ in batches]

    first = epoch(1, 0)
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(1, 0)))
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch(1, 1)))
    assert first[0].shape == (6, 3, CROP, CROP) and first[0].dtype == torch.float32


def test_centre_crop_as_the_validation_transform_gives_the_fixed_crop_in_order():
    images = torch.randint(
        0,
        256,
        (7, 3, 60, 60),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(1),
    )
    batches = DeviceBatches(
        images, torch.arange(7), 4, transform=centre_crop, channels_last=True
    )
    xs = [x for x, _ in batches]
    assert torch.equal(torch.cat(xs), centre_crop(images))
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in xs)


def test_a_transform_that_changes_the_batch_size_is_named():
    batches = DeviceBatches(*indexed(4), 2, transform=lambda x, g: x[:1])
    with pytest.raises(
        ValueError,
        match=r"transform .* must return a \(2, \.\.\.\) tensor, got shape \(1, 3\)",
    ):
        list(batches)


# ---- no shared storage ---------------------------------------------------------------------------


def epoch_zero(batches: DeviceBatches) -> DeviceBatches:
    batches.set_epoch(0)
    return batches


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"shuffle": True, "seed": 0},
        {"transform": lambda x, g: x},
        {"shuffle": True, "seed": 1, "transform": lambda x, g: x},
    ],
    ids=["plain", "shuffle", "identity-transform", "shuffle-and-transform"],
)
def test_an_in_place_change_to_a_batch_changes_neither_the_data_set_nor_the_callers_tensors(
    options,
):
    inputs, targets = indexed(10)
    kept_inputs, kept_targets = inputs.clone(), targets.clone()
    batches = DeviceBatches(inputs, targets, 4, **options)
    first = [(x.clone(), y.clone()) for x, y in epoch_zero(batches)]
    for x, y in epoch_zero(batches):
        x.mul_(-1).add_(1000)  # what an in-place first layer of a model would do
        y.zero_()
    again = list(epoch_zero(batches))
    for (x0, y0), (x1, y1) in zip(first, again):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert torch.equal(inputs, kept_inputs) and torch.equal(targets, kept_targets)


def test_later_changes_to_the_callers_tensors_do_not_reach_the_batches():
    inputs, targets = indexed(6)
    batches = DeviceBatches(inputs, targets, 6)
    inputs.zero_()
    x, _ = next(iter(batches))
    assert x[:, 0].tolist() == list(range(6))


def test_batches_live_on_the_requested_device(device):
    inputs, targets = indexed(10)
    batches = DeviceBatches(inputs, targets, 4, shuffle=True, seed=0, device=device)
    cpu = DeviceBatches(inputs, targets, 4, shuffle=True, seed=0)
    for (x, y), (x_cpu, y_cpu) in zip(batches, cpu):
        assert x.device.type == device.type and y.device.type == device.type
        # the same order on every device
        assert torch.equal(x.cpu(), x_cpu) and torch.equal(y.cpu(), y_cpu)


def test_repr_names_size_device_and_options():
    text = repr(DeviceBatches(*indexed(5), 2, shuffle=True, seed=3))
    assert "5 examples on cpu" in text and "batch_size=2" in text and "seed=3" in text


# ---- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, options, message",
    [
        (([1, 2], torch.zeros(2), 1), {}, "inputs must be a tensor, got list"),
        ((torch.zeros(2, 1), None, 1), {}, "targets must be a tensor, got NoneType"),
        ((torch.tensor(1.0), torch.zeros(1), 1), {}, "inputs needs a batch dimension"),
        (
            (torch.zeros(3, 1), torch.zeros(2), 1),
            {},
            "inputs hold 3 examples but targets hold 2",
        ),
        ((torch.zeros(0, 1), torch.zeros(0), 1), {}, r"empty inputs of shape \(0, 1\)"),
        (
            (torch.zeros(3, 1), torch.zeros(3), 0),
            {},
            "batch_size must be an int >= 1, got 0",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), True),
            {},
            "batch_size must be an int >= 1, got True",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 2.0),
            {},
            "batch_size must be an int >= 1, got 2.0",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 4),
            {"drop_last": True},
            "drop_last=True with 3 examples and batch_size=4",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 1),
            {"shuffle": "yes"},
            "shuffle must be True or False, got 'yes'",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 1),
            {"seed": -1},
            "seed must be an int >= 0, got -1",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 1),
            {"seed": 1.5},
            "seed must be an int >= 0, got 1.5",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 1),
            {"transform": 3},
            "transform must be callable.*got 3",
        ),
        (
            (torch.zeros(3, 1), torch.zeros(3), 1),
            {"channels_last": True},
            r"channels_last=True needs 4-D inputs.*\(3, 1\)",
        ),
        ((torch.zeros(3, 1), torch.zeros(3), 1), {"device": "tpu"}, "device='tpu'"),
        (
            (torch.zeros(3, 1), torch.zeros(3), 1),
            {"device": 0},
            "device must be a torch.device.*got 0",
        ),
    ],
)
def test_bad_arguments_are_named(args, options, message):
    with pytest.raises(ValueError, match=message):
        DeviceBatches(*args, **options)


def test_bad_epochs_and_states_are_named_and_change_nothing():
    batches = DeviceBatches(*indexed(4), 2, shuffle=True, seed=1)
    for epoch in (-1, 1.0, True, None):
        with pytest.raises(
            ValueError, match=f"epoch must be an int >= 0, got {epoch!r}"
        ):
            batches.set_epoch(epoch)
    for state in (
        {"seed": 1},
        {"seed": -2, "epoch": 0},
        {"seed": 1, "epoch": "3"},
        [1, 2],
    ):
        with pytest.raises(ValueError, match="seed|epoch"):
            batches.load_state_dict(state)
    assert batches.state_dict() == {"seed": 1, "epoch": 0}
