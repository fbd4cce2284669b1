# SPDX-License-Identifier: MIT
"""Reads each item's file and reports its name, size and line count.

Run by read_files.ini (plugin = worker, items = files:...).  Standard
library only.
"""
import os

import weft_worker


@weft_worker.task
def process(item):
    # item.bytes is the path's own bytes: a name that is not valid UTF-8
    # still opens (item.text holds it with surrogate escapes).
    with open(item.bytes, "rb") as f:
        data = f.read()
    lines = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        lines += 1  # a last line without its newline still counts
    return {"name": os.path.basename(item.text), "bytes": len(data), "lines": lines}


if __name__ == "__main__":
    weft_worker.run()
