# SPDX-License-Identifier: MIT
"""The baseline for examples/worker/noise_png.ini: what a Python user writes.

    python3 bench/noise_png_pool.py [OUTDIR] [--processes N] [--count N]

multiprocessing.Pool(N).map over the images, numpy random pixels and
cv2.imwrite: 2000 grey 100x100 PNGs by default.  bench/bench_worker.sh runs it
against weft's worker plugin running examples/worker/noise_png.py.

What makes the comparison fair: each image does exactly the work of
noise_png.py's process(): a generator seeded per item (default_rng of an
integer seed), the same integers() draw, cv2.imwrite under a hidden temporary
name with the .png kept, then os.replace onto the final name (noise_png.py
pays that rename through weft_worker.atomic_output); OpenCV's thread pool off
in both; the folder created once per process; the file names collected in
input order and written as one JSON array (weft writes noise_png.json).
Nothing is synced in either.  Pool.map keeps its default chunksize, as a user
would.  Differences that remain are the point of the comparison: weft's
workers each start a Python and import numpy and cv2 (a fork()ed Pool
inherits the parent's imports), and weft sends items one at a time over pipes
instead of in pickled chunks.
"""
import argparse
import functools
import json
import multiprocessing
import os

import cv2
import numpy as np

cv2.setNumThreads(1)  # as noise_png.py: the processes are the parallelism


def make_image(index, size_x, size_y, outdir):
    # The per-item seed: weft derives item.seed from the run seed and the
    # index; any integer costs default_rng() the same.
    pixels = np.random.default_rng(index).integers(0, 256, size=(size_y, size_x),
                                                   dtype=np.uint8)
    name = f"noise_{index:06}.png"
    final = os.path.join(outdir, name)
    tmp = os.path.join(outdir, f".noise_{index:06}.tmp-{os.getpid()}-{index}.png")
    if not cv2.imwrite(tmp, pixels):
        raise OSError(f"cv2.imwrite could not write {tmp}")
    os.replace(tmp, final)
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", nargs="?", default="out")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size-x", type=int, default=100)
    ap.add_argument("--size-y", type=int, default=100)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    work = functools.partial(make_image, size_x=a.size_x, size_y=a.size_y, outdir=a.outdir)
    with multiprocessing.Pool(processes=a.processes) as pool:
        names = pool.map(work, range(a.count))
    with open(os.path.join(a.outdir, "names.json"), "w") as f:
        json.dump(names, f)


if __name__ == "__main__":
    main()
