# SPDX-License-Identifier: MIT
"""The noise PNG job in Python: one 8-bit grey PNG of random noise per item.

Run by noise_png.ini (plugin = worker).  The pixels come from item.rng(),
seeded by item.seed: the same run seed gives the same images, whatever the
thread count or the order items run in.  Needs numpy and OpenCV
(python3-numpy, python3-opencv on Debian).
"""
import os

import cv2
import numpy as np

import weft_worker

# Each worker is one process taking one item at a time; weft runs several.
# OpenCV's own thread pool would only compete with them.
cv2.setNumThreads(1)


@weft_worker.setup
def make_outdir(outdir: str = "out"):
    # Once per worker, before any item: every worker may create it, so
    # exist_ok.
    os.makedirs(outdir, exist_ok=True)


@weft_worker.task
def process(item, size_x: int = 100, size_y: int = 100, outdir: str = "out"):
    pixels = item.rng().integers(0, 256, size=(size_y, size_x), dtype=np.uint8)
    name = f"noise_{item.index:06}.png"
    # Written under a hidden temporary name, renamed when complete: a worker
    # killed mid-write never leaves a partial noise_NNNNNN.png.
    with weft_worker.atomic_output(os.path.join(outdir, name)) as tmp:
        if not cv2.imwrite(tmp, pixels):  # False, not an exception, on failure
            raise OSError(f"cv2.imwrite could not write {tmp}")
    return name


if __name__ == "__main__":
    weft_worker.run()
