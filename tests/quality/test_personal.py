"""Personal data in a list's text (pipelines/quality/personal.py): identity numbers in every written form,
and the candidate strings hashed to look for insured persons' names. Plain Python on hand-made values."""
from __future__ import annotations

import pytest

from pipelines.quality.personal import id_numbers, is_id15, is_id18, masked, name_candidates

VALID = "110101199003071233"    # check character 3
VALID_X = "11010519491231002X"


@pytest.mark.parametrize("text, found", [
    (f"参保人{VALID}当日超量。", [VALID]),                       # inside Chinese text
    ("110101 19900307 1233", [VALID]),                             # spaced as on a card
    ("110101-1990-0307-1233", [VALID]),                            # hyphenated
    ("1101 0119 9003 0712 33", [VALID]),                           # groups of four
    ("11010519491231002x号", [VALID_X]),                            # lower-case check character
    ("证号110101900307123。", ["110101900307123"]),                 # the old 15 digits
    (f"{VALID} 5", [VALID]),                                       # a number after it is another group
])
def test_identity_numbers_are_found_in_every_written_form(text, found):
    assert id_numbers(text) == found


@pytest.mark.parametrize("text", [
    "110101199003071234",                  # wrong check character
    "1110101199003071233",                 # 19 digits: part of a longer number
    "991010199003071233",                  # no such province
    "110101199013071238",                  # month 13
    "3301026676765558",                    # a 16-digit person number
    "MD20231844303269",                    # a visit id
    "2023-03-01 2023-03-05 2023-03-09",    # dates in a row
    "金额616.00元，明细100000000399",
    None, "",
])
def test_other_numbers_are_not_identity_numbers(text):
    assert id_numbers(text) == []


def test_in_a_hash_only_a_number_standing_alone_counts():
    assert id_numbers(f"ab{VALID}cd", hashlike=True) == []
    assert id_numbers(f"ab{VALID}cd") == [VALID]
    assert id_numbers(VALID, hashlike=True) == [VALID]


def test_checks_and_masking():
    assert is_id18(VALID) and is_id18(VALID_X) and not is_id18(VALID[:-1] + "4")
    assert is_id15("110101900307123") and not is_id15("110101901307123")
    assert masked(VALID) == "110…33"


def test_name_candidates():
    own, whole = name_candidates("参保人张 伟于2023-03-01住院，李四·王")
    assert {"张伟", "人张伟", "李四王"} <= own          # substrings of Chinese runs, gaps and dots ignored
    assert "参保人张伟于" in whole and "李四王" in whole  # whole runs
    assert name_candidates("欧阳 明华")[1] >= {"欧阳 明华", "欧阳明华", "欧阳", "明华"}
    assert name_candidates(None) == (set(), set())
