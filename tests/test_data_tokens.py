"""The vocabulary of chapter 07: normalize_name (typed names), strict encode, decode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbhelpers.data.tokens import (
    CHARS,
    MAX_LEN,
    decode,
    encode,
    normalize_name,
    preprocess,
)

LETTERS = "abcdefghijklmnopqrstuvwxyzñç'"


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("María José", "maria_jose"),
        ("JUAN", "juan"),
        ("  ana   belén ", "ana_belen"),
        ("Ana\tMaría", "ana_maria"),
        ("NÚÑEZ", "nuñez"),
        ("Çelia", "çelia"),
        ("n\u0303andu", "ñandu"),  # "n" followed by a combining tilde
        ("D'ARTAGNAN", "d'artagnan"),
        ("Güemes", "guemes"),
        ("maria_jose", "maria_jose"),
    ],
)
def test_normalize_name_spells_typed_names_like_the_vocabulary(typed, expected):
    assert normalize_name(typed) == expected


@pytest.mark.parametrize(
    "typed, char",
    [
        ("Ana-María", "-"),
        ("R2D2", "2"),
        ("j.r.", "."),
        ("Zoë?", "?"),
        ("李", "李"),
        ("Straße", "ß"),
    ],
)
def test_normalize_name_names_the_name_and_the_offending_character(typed, char):
    with pytest.raises(ValueError) as caught:
        normalize_name(typed)
    assert repr(typed) in str(caught.value) and repr(char) in str(caught.value)


@pytest.mark.parametrize("typed", ["", " ", "\t\n"])
def test_normalize_name_refuses_empty_and_blank_names(typed):
    with pytest.raises(ValueError, match="at least one letter"):
        normalize_name(typed)


def test_normalize_name_wants_a_str():
    with pytest.raises(TypeError, match="got int 42"):
        normalize_name(42)  # type: ignore[arg-type]


WORDS = st.lists(
    st.text(alphabet=LETTERS + "ÁÉÍÓÚÜáéíóúüÑÇ", min_size=1, max_size=8),
    min_size=1,
    max_size=4,
)


@given(WORDS)
def test_normalized_names_always_encode_and_normalizing_twice_changes_nothing(words):
    name = normalize_name("  ".join(words))
    assert normalize_name(name) == name
    assert set(name) <= set(CHARS) - {"."}
    assert decode(encode(name)) == preprocess(name)


def test_encode_refuses_a_character_outside_the_vocabulary_instead_of_dropping_it():
    with pytest.raises(
        ValueError, match=r"name 'ana maria' holds the character ' '.*normalize_name"
    ):
        encode("ana maria")
    with pytest.raises(ValueError, match="'J'"):
        encode("JUAN")
    with pytest.raises(ValueError, match=r"'\.' \(the padding character\)"):
        encode("j.r")
    with pytest.raises(ValueError, match="empty name"):
        encode("")
    with pytest.raises(TypeError, match="NoneType"):
        encode(None)  # type: ignore[arg-type]


def test_long_names_are_cut_to_max_len_as_documented():
    name = "maria_de_los_angeles_del_carmen"
    assert len(name) > MAX_LEN
    assert preprocess(name) == "." + name[:MAX_LEN]
    assert len(encode(name)) == MAX_LEN + 1


def test_padding_and_the_seed_example():
    assert preprocess("ana") == ".ana" + "." * (MAX_LEN - 3)
    assert encode("john_andrew")[:13] == [0, 12, 17, 10, 16, 2, 3, 16, 6, 20, 7, 25, 0]


def test_decode_refuses_tokens_outside_the_vocabulary():
    with pytest.raises(ValueError, match="token -1"):
        decode([0, -1])
