# SPDX-License-Identifier: MIT
"""Reads a weft .npy of one number per item with numpy, for
tests/cli/test_npy.c, against what the items say each element must be.

    npy_check.py FILE DESCR EXPECT.json

DESCR is the dtype numpy must see ('<f8', '<i8', '<f4', '<i4', ...).
EXPECT.json is a list, one entry per item: a number (the element equals
it exactly, as that dtype), null (the element is a hole: NaN, or the
int minimum), or [number] (either).  Prints "holes=N".  Exit 0: as
expected; 1: a difference (printed); 77: numpy is not installed.
"""
import json
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)


def main():
    path, descr, expect_path = sys.argv[1:4]
    with open(expect_path) as f:
        expect = json.load(f)
    a = np.load(path)
    bad = []
    if a.dtype.str != descr:
        bad.append("dtype %s, want %s" % (a.dtype.str, descr))
    if a.shape != (len(expect),):
        bad.append("shape %s, want (%d,)" % (a.shape, len(expect)))
    if bad:
        print("\n".join(bad))
        return 1
    floating = a.dtype.kind == "f"
    holes = np.isnan(a) if floating else a == np.iinfo(a.dtype).min
    for k, want in enumerate(expect):
        either = isinstance(want, list)
        if either:
            want = want[0]
        if want is None:
            if not holes[k]:
                bad.append("[%d] = %r, want a hole" % (k, a[k].item()))
        elif either and holes[k]:
            pass
        elif holes[k] or a[k] != a.dtype.type(want) or (
                not floating and int(a[k]) != want):
            bad.append("[%d] = %r, want %r" % (k, a[k].item(), want))
        if len(bad) > 10:
            break
    print("holes=%d" % int(holes.sum()))
    if bad:
        print("\n".join(bad))
        return 1
    return 0


sys.exit(main())
