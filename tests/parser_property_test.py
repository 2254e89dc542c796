"""Property tests of the raw-file parser: it never crashes and never loses a line.

For any bytes, `split_lines` + `parse_lines` either accepts or rejects (with a
known reason) each line, and accepted + rejected = the number of lines in the input.
"""

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.example_gen import movielens

PARSERS = {
    movielens.RATINGS_FILE: functools.partial(movielens.parse_rating, max_timestamp=1_800_000_000),
    movielens.USERS_FILE: movielens.parse_user,
    movielens.MOVIES_FILE: movielens.parse_movie,
}
VALID = {
    movielens.RATINGS_FILE: b"196\t242\t3\t881250949",
    movielens.USERS_FILE: b"1|24|M|technician|85711",
    movielens.MOVIES_FILE: b"543|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|"
    + b"|".join([b"0"] * 8 + [b"1"] * 11),
}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_line_count(data: bytes) -> int:
    """Lines as a text editor counts them: `\\n`-terminated pieces plus an unterminated tail."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def check(file: str, data: bytes) -> None:
    lines = movielens.split_lines(file, data)
    accepted, rejected = movielens.parse_lines(lines, PARSERS[file])
    assert len(accepted) + len(rejected) == len(lines) == expected_line_count(data)
    assert all(r.reason in movielens.REASONS and r.file == file for r in rejected)
    # Each line is accounted for exactly once, by number.
    numbers = sorted([line.line_no for line, _ in accepted] + [r.line_no for r in rejected])
    assert numbers == list(range(1, len(lines) + 1))


@pytest.mark.parametrize("file", sorted(PARSERS))
@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_are_accepted_or_rejected_line_by_line(file, data):
    check(file, data)


@st.composite
def mutated_file(draw, file: str) -> bytes:
    """Valid lines, some mutated: bytes replaced, inserted or deleted, fields dropped or duplicated."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        line = bytearray(VALID[file])
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["replace", "insert", "delete", "separator", "digit"]))
            at = draw(st.integers(0, max(len(line) - 1, 0)))
            if kind == "replace" and line:
                line[at] = draw(st.integers(0, 255))
            elif kind == "insert":
                line[at:at] = draw(st.binary(min_size=1, max_size=4))
            elif kind == "delete" and line:
                del line[at : at + draw(st.integers(1, 5))]
            elif kind == "separator":
                line[at:at] = draw(st.sampled_from([b"\t", b"|", b"\r", b"\n", b" "]))
            else:
                line[at:at] = draw(st.sampled_from([b"0", b"9", b"-", b"99999999999999"]))
        lines.append(bytes(line))
    ending = draw(st.sampled_from([b"\n", b"\r\n", b""]))
    return ending.join(lines) + draw(st.sampled_from([ending, b""]))


@pytest.mark.parametrize("file", sorted(PARSERS))
@SETTINGS
@given(data=st.data())
def test_mutated_valid_lines_are_accepted_or_rejected_line_by_line(file, data):
    check(file, data.draw(mutated_file(file)))


@pytest.mark.parametrize("file", sorted(PARSERS))
def test_valid_lines_are_accepted(file):
    lines = movielens.split_lines(file, b"\r\n".join([VALID[file]] * 3) + b"\r\n")
    accepted, rejected = movielens.parse_lines(lines, PARSERS[file])
    assert len(accepted) == 3 and not rejected
