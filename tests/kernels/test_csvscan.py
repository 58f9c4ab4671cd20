"""The CSV byte kernels against plain Python (str.split, float, FNV-1a) on seeded random text."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attribid.kernels import csvscan


def as_bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8)


def random_csv(rng: np.random.Generator, rows: int, width: int) -> tuple[str, list[list[str]]]:
    """CSV text with padded fields, empty fields, blank lines, CRLF and maybe no final newline."""
    words = ["a", "bb", "", "x y", "3.5", "-2e3", "7", "caf\u00e9"]
    lines, fields = [], []
    for _ in range(rows):
        row = [str(rng.choice(words)) for _ in range(width)]
        fields.append(row)
        pad = [rng.choice(["", " ", "\t", " \t "]) for _ in range(2 * width)]
        lines.append(",".join(pad[2 * k] + f + pad[2 * k + 1] for k, f in enumerate(row)))
        if rng.random() < 0.2:
            lines.append("")
    text = "".join(line + ("\r\n" if rng.random() < 0.3 else "\n") for line in lines)
    if rng.random() < 0.5:
        text = text.rstrip("\r\n")
    return text, fields


def reference_spans(text: bytes, width: int) -> list[list[bytes]]:
    out = []
    for line in text.split(b"\n"):
        line = line[:-1] if line.endswith(b"\r") else line
        if line == b"":
            continue
        out.append([f.strip(b" \t") for f in line.split(b",")])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_scan_fields_matches_split(seed: int) -> None:
    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 5))
    text, _ = random_csv(rng, 40, width)
    buf = as_bytes(text)
    starts, ends, status = csvscan.scan_fields(buf, width)
    assert status == csvscan.OK
    ref = reference_spans(text.encode(), width)
    assert starts.shape == (width, len(ref))
    raw = buf.tobytes()
    for r, row in enumerate(ref):
        assert [raw[starts[k, r]:ends[k, r]] for k in range(width)] == row


def test_scan_fields_reports_quotes_and_field_counts() -> None:
    assert csvscan.scan_fields(as_bytes('a,1\n"b",2\n'), 2)[2] == csvscan.QUOTED
    assert csvscan.scan_fields(as_bytes("a,1\nb\n"), 2)[2] == csvscan.FIELD_COUNT
    assert csvscan.scan_fields(as_bytes("a,1,2\n"), 2)[2] == csvscan.FIELD_COUNT
    starts, ends, status = csvscan.scan_fields(as_bytes(""), 3)
    assert status == csvscan.OK and starts.shape == (3, 0)
    starts, ends, status = csvscan.scan_fields(as_bytes("z"), 1)
    assert status == csvscan.OK and (starts.tolist(), ends.tolist()) == ([[0]], [[1]])


def number_texts(rng: np.random.Generator) -> list[str]:
    out = ["0", "-0", "+1", "1.", ".5", "007", "1e22", "1e-22", "9007199254740992", "123456789012345678",
           "1.5E+3", "2e-0", "9007199254740993", "1234567890123456789", "1e23", "1e-23",
           "nan", "inf", "-inf", "", "-", ".", "e5", "1e", "1e+", "1.2.3", "12a", "0x10", " 1"]
    for _ in range(300):
        digits = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 17))))
        cut = int(rng.integers(0, len(digits) + 1))
        text = digits[:cut] + ("." + digits[cut:] if cut < len(digits) else "")
        if rng.random() < 0.4:
            text += "e" + str(int(rng.integers(-25, 26)))
        out.append(("-" if rng.random() < 0.3 else "") + text)
    return out


def test_parse_numbers_equals_float_where_it_says_ok() -> None:
    texts = number_texts(np.random.default_rng(0))
    joined = ",".join(texts)
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 1
    starts_a = np.array(starts)
    ends_a = starts_a + np.array([len(t) for t in texts])
    values, ok = csvscan.parse_numbers(as_bytes(joined), starts_a, ends_a)
    for t, v, good in zip(texts, values, ok):
        if good:
            assert v == float(t) and math.copysign(1, v) == math.copysign(1, float(t)), t
        else:
            assert math.isnan(v), t
    by_text = dict(zip(texts, ok))
    # The fast path takes plain decimals and leaves everything else to float().
    assert by_text["1e22"] and by_text["9007199254740992"] and by_text["-0"]
    # Past 2**53, 18 digits or |exponent| 22 the result might not be exact: float() decides.
    for t in ("nan", "inf", "", "-", ".", "e5", "1e", "1e+", "1.2.3", "12a", "0x10", " 1",
              "123456789012345678", "1234567890123456789", "1e23", "9007199254740993"):
        assert not by_text[t], t
    assert ok.sum() > 250


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % (1 << 64)
    return h


def test_hash_mismatch_and_join_match_python() -> None:
    rng = np.random.default_rng(3)
    text, _ = random_csv(rng, 30, 2)
    buf = as_bytes(text)
    starts, ends, _ = csvscan.scan_fields(buf, 2)
    raw = buf.tobytes()
    col = [raw[a:b] for a, b in zip(starts[0], ends[0])]
    assert csvscan.hash_fields(buf, starts[0], ends[0]).tolist() == [fnv1a(c) for c in col]
    assert csvscan.join_spans(buf, starts[0], ends[0]) == b"\n".join(col)
    first = {}
    rep = np.array([first.setdefault(c, r) for r, c in enumerate(col)])
    assert csvscan.first_mismatch(buf, starts[0], ends[0], rep) == -1
    wrong = rep.copy()
    k = next(r for r in range(len(col)) if col[r] != col[0])
    wrong[k] = 0
    expect = next(r for r in range(len(col)) if col[r] != col[wrong[r]])
    assert csvscan.first_mismatch(buf, starts[0], ends[0], wrong) == expect
    empty = np.zeros(0, np.int64)
    assert csvscan.join_spans(buf, empty, empty) == b""
    assert csvscan.hash_fields(buf, empty, empty).shape == (0,)
    assert csvscan.hash_fields(buf, np.array([0]), np.array([0])).tolist() == [fnv1a(b"")]
