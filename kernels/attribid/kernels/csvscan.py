"""Numba kernels that read plain (unquoted) CSV bytes in bulk, for kernels/loader.py.

``scan_fields`` finds every field's byte span (trimmed of spaces and tabs);
``parse_numbers`` parses decimal numbers exactly where that is cheap;
``hash_fields`` and ``first_mismatch`` turn a text column into codes. Anything
unusual (quotes, a wrong field count, a number outside the exact fast path)
is reported back so the caller can take the general, slower path.
"""
from __future__ import annotations

import numpy as np

from attribid.kernels.config import jit_nogil

#: scan_fields status codes
OK, QUOTED, FIELD_COUNT = 0, 1, 2

_NEWLINE, _CR, _QUOTE, _SPACE, _TAB = 10, 13, 34, 32, 9
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
#: exact powers of ten in float64 (10**22 is the largest)
_POW10 = np.array([10.0 ** k for k in range(23)])


@jit_nogil
def _scan_fields(buf, width, sep, starts, ends):
    n = buf.shape[0]
    row = 0
    field = 0
    s = 0
    for i in range(n + 1):
        c = buf[i] if i < n else _NEWLINE        # a last line without its newline
        if c == _QUOTE:
            return row, QUOTED
        if c != sep and c != _NEWLINE:
            continue
        e = i
        if c == _NEWLINE and e > s and buf[e - 1] == _CR:
            e -= 1
        if c == _NEWLINE and field == 0 and e == s:
            s = i + 1                              # a blank line
            continue
        if field >= width:
            return row, FIELD_COUNT
        a = s
        b = e
        while a < b and (buf[a] == _SPACE or buf[a] == _TAB):
            a += 1
        while b > a and (buf[b - 1] == _SPACE or buf[b - 1] == _TAB):
            b -= 1
        starts[field, row] = a
        ends[field, row] = b
        field += 1
        s = i + 1
        if c == _NEWLINE:
            if field != width:
                return row, FIELD_COUNT
            row += 1
            field = 0
    return row, OK


def scan_fields(buf: np.ndarray, width: int, sep: str = ",") -> tuple[np.ndarray, np.ndarray, int]:
    """Field spans of CSV body bytes: ``(starts [width, R], ends [width, R], status)``.

    ``sep`` is the field delimiter, one ASCII character (``,`` ``;`` or a tab).

    Column-major, so each column's spans are contiguous.

    ``status`` is OK, QUOTED (the text has a quote: use a full CSV reader) or
    FIELD_COUNT (some line has the wrong number of fields). Blank lines are skipped.

    >>> s, e, status = scan_fields(np.frombuffer(b"a, 1\\n\\nbb,2\\n", np.uint8), 2)
    >>> s.tolist(), e.tolist(), status
    ([[0, 6], [3, 9]], [[1, 8], [4, 10]], 0)
    """
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    if buf.ndim != 1 or width < 1:
        raise ValueError("buf must be 1-D uint8 and width >= 1")
    if len(sep) != 1 or not sep.isascii() or sep in '"\r\n':
        raise ValueError(f"sep must be one ASCII character other than a quote or newline, got {sep!r}")
    capacity = int(np.count_nonzero(buf == _NEWLINE)) + 1
    starts = np.empty((width, capacity), dtype=np.int64)
    ends = np.empty((width, capacity), dtype=np.int64)
    rows, status = _scan_fields(buf, width, ord(sep), starts, ends)
    return starts[:, :rows], ends[:, :rows], int(status)


@jit_nogil
def _parse_numbers(buf, starts, ends, out, ok):
    for r in range(starts.shape[0]):
        a = starts[r]
        b = ends[r]
        ok[r] = False
        out[r] = np.nan
        neg = False
        if a < b and (buf[a] == 45 or buf[a] == 43):    # - or +
            neg = buf[a] == 45
            a += 1
        mantissa = 0
        digits = 0
        any_digit = False
        exp = 0
        seen_dot = False
        good = a < b
        while a < b:
            c = buf[a]
            if 48 <= c <= 57:
                any_digit = True
                if digits < 18:
                    mantissa = mantissa * 10 + (c - 48)
                    if mantissa > 0:
                        digits += 1
                    if seen_dot:
                        exp -= 1
                else:
                    good = False                   # too many digits to be exact here
                    break
            elif c == 46 and not seen_dot:         # .
                seen_dot = True
            elif c == 101 or c == 69:              # e, E
                break
            else:
                good = False
                break
            a += 1
        good = good and any_digit
        if good and a < b:
            a += 1
            eneg = False
            if a < b and (buf[a] == 45 or buf[a] == 43):
                eneg = buf[a] == 45
                a += 1
            e = 0
            good = a < b
            while a < b and good:
                c = buf[a]
                if 48 <= c <= 57 and e < 10000:
                    e = e * 10 + (c - 48)
                else:
                    good = False
                a += 1
            exp += -e if eneg else e
        if not good or mantissa > 9007199254740992 or exp > 22 or exp < -22:
            continue
        # one correctly rounded operation on exact operands: the nearest double
        v = mantissa * _POW10[exp] if exp >= 0 else mantissa / _POW10[-exp]
        out[r] = -v if neg else v
        ok[r] = True


def parse_numbers(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Decimal numbers in the byte spans: ``(values float64, ok bool)``.

    ``ok`` is False where the text is not a plain decimal or is outside the
    exact fast path (more than 18 digits, |exponent| > 22); such values are NaN
    and must be parsed by ``float``. Parsed values equal ``float(text)`` exactly.

    >>> v, ok = parse_numbers(np.frombuffer(b"0.0013 -2e3 x 1.5e", np.uint8),
    ...                       np.array([0, 7, 12, 14]), np.array([6, 11, 13, 18]))
    >>> v[:2].tolist(), ok.tolist()
    ([0.0013, -2000.0], [True, True, False, False])
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError("starts and ends must be 1-D of the same shape")
    out = np.empty(starts.shape[0])
    ok = np.empty(starts.shape[0], dtype=np.bool_)
    _parse_numbers(np.ascontiguousarray(buf, dtype=np.uint8), starts, ends, out, ok)
    return out, ok


@jit_nogil
def _hash_fields(buf, starts, ends, out):
    for r in range(starts.shape[0]):
        h = _FNV_OFFSET
        for i in range(starts[r], ends[r]):
            h = (h ^ np.uint64(buf[i])) * _FNV_PRIME
        out[r] = h


def hash_fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit FNV-1a hash of each byte span, uint64 [R].

    >>> h = hash_fields(np.frombuffer(b"ab,ab,b", np.uint8), np.array([0, 3, 6]),
    ...                 np.array([2, 5, 7]))
    >>> bool(h[0] == h[1] and h[0] != h[2])
    True
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    out = np.empty(starts.shape[0], dtype=np.uint64)
    _hash_fields(np.ascontiguousarray(buf, dtype=np.uint8), starts, ends, out)
    return out


@jit_nogil
def _first_mismatch(buf, starts, ends, rep):
    for r in range(starts.shape[0]):
        q = rep[r]
        n = ends[r] - starts[r]
        if ends[q] - starts[q] != n:
            return r
        for k in range(n):
            if buf[starts[r] + k] != buf[starts[q] + k]:
                return r
    return -1


def first_mismatch(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   rep: np.ndarray) -> int:
    """First row whose span's bytes differ from those of row ``rep[row]``; -1 if none.

    Guards hash codes against collisions: every row must equal its code's representative.

    >>> first_mismatch(np.frombuffer(b"ab,ab,ba", np.uint8), np.array([0, 3, 6]),
    ...                np.array([2, 5, 8]), np.array([0, 0, 0]))
    2
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    rep = np.ascontiguousarray(rep, dtype=np.int64)
    return int(_first_mismatch(np.ascontiguousarray(buf, dtype=np.uint8), starts, ends, rep))


@jit_nogil
def _join_spans(buf, starts, ends, out):
    k = 0
    for r in range(starts.shape[0]):
        if r > 0:
            out[k] = _NEWLINE
            k += 1
        for i in range(starts[r], ends[r]):
            out[k] = buf[i]
            k += 1


def join_spans(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bytes:
    """The spans' bytes joined by newlines (which an unquoted field cannot contain).

    One decode and one split then give every value, without a Python call per value.

    >>> join_spans(np.frombuffer(b"ab,c", np.uint8), np.array([0, 3]), np.array([2, 4]))
    b'ab\\nc'
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    size = int((ends - starts).sum()) + max(starts.shape[0] - 1, 0)
    out = np.empty(size, dtype=np.uint8)
    _join_spans(np.ascontiguousarray(buf, dtype=np.uint8), starts, ends, out)
    return out.tobytes()
