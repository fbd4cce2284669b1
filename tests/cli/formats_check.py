# SPDX-License-Identifier: MIT
"""Reads weft's CSV and TSV outputs back as their users would, for
tests/cli/test_formats.c: Python's csv module (and pandas when it is there),
against what the items say each row must hold.

    formats_check.py strings ITEMS.json OUT FAIL_ON   json: strings, mode = text
    formats_check.py bytes LINES.txt OUT              lines: (any bytes), mode = text
    formats_check.py objects ITEMS.json OUT COLUMNS   json: objects, mode = item_json
    formats_check.py pandas ITEMS.json OUT COLUMNS    the same through pandas.read_csv

OUT ends in .csv or .tsv.  Exit 0: as expected; 1: a difference (printed);
77: pandas is not installed.
"""
import csv
import io
import json
import sys

HEADER = ["index", "input", "ok", "error"]


def tsv_unescape(field):
    out, k = [], 0
    while k < len(field):
        c = field[k]
        if c == "\\" and k + 1 < len(field):
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[field[k + 1]])
            k += 2
        else:
            out.append(c)
            k += 1
    return "".join(out)


def read_rows(path):
    """Every row, the header first, as lists of str."""
    with open(path, newline="", encoding="utf-8", errors="strict") as f:
        text = f.read()
    if path.endswith(".tsv"):
        # No quoting in TSV: a record is a line, a field is between tabs.
        assert text.endswith("\n"), "the last row has no LF"
        return [[tsv_unescape(x) for x in line.split("\t")] for line in text[:-1].split("\n")]
    return list(csv.reader(io.StringIO(text, newline="")))


def expect(rows, want):
    bad = 0
    if len(rows) != len(want):
        print(f"{len(rows)} rows, expected {len(want)}")
        bad = 1
    for k, (got, exp) in enumerate(zip(rows, want)):
        if got != exp:
            print(f"row {k}:\n  got      {got!r}\n  expected {exp!r}")
            bad = 1
    return bad


def strings(items_path, out, fail_on):
    items = json.load(open(items_path, encoding="utf-8"))
    want = [HEADER + ["value"]]
    for i, s in enumerate(items):
        text = s.replace("\0", "\ufffd")
        if fail_on and fail_on in s.split("\0")[0]:
            want.append([str(i), text, "false", "failed on " + s.split("\0")[0], ""])
        else:
            want.append([str(i), text, "true", "", text])
    return expect(read_rows(out), want)


def raw_bytes(lines_path, out):
    data = open(lines_path, "rb").read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    want = [HEADER + ["value"]]
    for i, line in enumerate(lines):
        # One U+FFFD per invalid byte, as weft writes (Python agrees for the
        # lone and truncated bytes the test uses).
        text = line.decode("utf-8", errors="replace").replace("\0", "\ufffd")
        want.append([str(i), text, "true", "", text])
    return expect(read_rows(out), want)


def cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def objects(items_path, out, columns):
    items = json.load(open(items_path, encoding="utf-8"))
    cols = [c.strip() for c in columns.split(",")]
    want = [HEADER + cols]
    rows = read_rows(out)
    for k, row in enumerate(rows[1:]):
        # The input is the element as JSON text (the item source's spelling).
        if k < len(items) and len(row) > 1 and json.loads(row[1]) == items[k]:
            row[1] = "(the item)"
    for i, obj in enumerate(items):
        extra = [k for k in obj if k not in cols]
        text = "(the item)"
        if extra:
            msg = f'the value has the key "{extra[0]}", which columns = does not list'
            want.append([str(i), text, "false", msg] + [""] * len(cols))
        else:
            want.append([str(i), text, "true", ""] + [cell(obj.get(c)) for c in cols])
    return expect(rows, want)


def with_pandas(items_path, out, columns):
    try:
        import pandas
    except ImportError:
        return 77
    items = json.load(open(items_path, encoding="utf-8"))
    cols = [c.strip() for c in columns.split(",")]
    if out.endswith(".tsv"):
        # TSV has no quoting: a '"' is a character like any other.
        df = pandas.read_csv(out, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    else:
        df = pandas.read_csv(out, keep_default_na=False)
    bad = 0

    def check(what, got, exp):
        nonlocal bad
        if got != exp:
            print(f"pandas: {what}: got {got!r}, expected {exp!r}")
            bad = 1

    check("columns", list(df.columns), HEADER + cols)
    check("rows", len(df), len(items))
    check("index dtype", str(df["index"].dtype), "int64")
    check("ok dtype", str(df["ok"].dtype), "bool")
    check("indexes", list(df["index"]), list(range(len(items))))
    for i, obj in enumerate(items):
        ok = all(k in cols for k in obj)
        check(f"row {i} ok", bool(df["ok"][i]), ok)
        for c in cols:
            if not ok:
                continue
            v = obj.get(c)
            got = df[c][i]
            if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
                continue  # pandas types those columns as it likes
            if isinstance(v, (int, float)):
                check(f"row {i} {c}", float(got), float(v))
            elif out.endswith(".csv"):
                check(f"row {i} {c}", str(got), v)
    return bad


def main(argv):
    mode = argv[1]
    if mode == "strings":
        return strings(argv[2], argv[3], argv[4])
    if mode == "bytes":
        return raw_bytes(argv[2], argv[3])
    if mode == "objects":
        return objects(argv[2], argv[3], argv[4])
    if mode == "pandas":
        return with_pandas(argv[2], argv[3], argv[4])
    print("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
