#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench_uneven: long and uneven items through a whole `weft run` of the exec
# plugin (`sleep {}` per item), against GNU xargs -P and a Python ThreadPool
# running the same sleeps, measured in the same run.
#
#   bash bench/bench_uneven.sh WEFT_EXE PLUGIN_DIR        (e.g. build/weft build/plugins)
#
# Scenarios (N = workers; items are sleep durations, one per line):
#   A  16 x 1 s at 16 workers             ideal 1 s
#   B   4 x 1 s at 4 workers              ideal 1 s
#   C 100 x 0.5 s at 50 workers           ideal 1 s
#   D 256 items at 4 workers, item k sleeps 1 s when k % 64 == 0, else 0.01 s;
#     ideal = the greedy list schedule in input order (each item goes to the
#     worker that frees first), computed below
#
# weft runs each scenario twice: in thread mode, and with isolate = process
# (forked workers: the same claims, no barrier either).
#
# Each round runs weft, then xargs, then Python, scenario by scenario
# (interleaved, so a machine drifting in speed affects all three alike);
# ROUNDS (default 3) rounds.  Times are medians over the rounds; the ratios
# are medians of the per-round ratios (paired).  Sleeping items need no CPU,
# so the ideal does not depend on the machine's cores: what is left over it
# is scheduling (and process start-up, ~ms).  There is no pass/fail: the
# script exits 0 unless a command fails.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 WEFT_EXE PLUGIN_DIR" >&2
    exit 2
fi
weft=$(realpath "$1")
plugins=$(realpath "$2")
[ -x "$weft" ] || { echo "bench_uneven: $weft is not executable" >&2; exit 2; }
[ -f "$plugins/exec.so" ] || { echo "bench_uneven: no exec.so in $plugins" >&2; exit 2; }
rounds=${ROUNDS:-3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench-uneven-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Runs a command and prints its wall time in seconds (CLOCK_MONOTONIC, taken
# around the child only, not around Python's own start-up); fails with the
# command's status.
timer="$tmp/timer.py"
cat >"$timer" <<'EOF'
import subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:])
t = time.monotonic() - t0
if r.returncode != 0:
    sys.stderr.write("bench_uneven: %s exited with %d\n" % (sys.argv[1:], r.returncode))
    sys.exit(1)
print("%.6f" % t)
EOF

# The Python baseline: ThreadPool(N).map of subprocess.run(["sleep", d]),
# timed inside (pool creation included); prints seconds.
pybase="$tmp/threadpool.py"
cat >"$pybase" <<'EOF'
import subprocess, sys, time
from multiprocessing.pool import ThreadPool
n = int(sys.argv[1])
with open(sys.argv[2]) as f:
    lines = [l.strip() for l in f if l.strip()]
t0 = time.monotonic()
with ThreadPool(n) as pool:
    rs = pool.map(lambda d: subprocess.run(["sleep", d]), lines)
t = time.monotonic() - t0
bad = [r for r in rs if r.returncode != 0]
if bad:
    sys.stderr.write("bench_uneven: %d sleeps failed\n" % len(bad))
    sys.exit(1)
print("%.6f" % t)
EOF

# Greedy list schedule in input order: makespan of N workers, each item
# going to the worker that frees first.
ideal_of() {
    python3 - "$1" "$2" <<'EOF'
import heapq, sys
n = int(sys.argv[1])
free = [0.0] * n
with open(sys.argv[2]) as f:
    for l in f:
        if l.strip():
            heapq.heappush(free, heapq.heappop(free) + float(l))
print("%.6f" % max(free))
EOF
}

# scenario NAME WORKERS: writes $tmp/NAME/durations.txt (from stdin) and
# $tmp/NAME/weft.ini.
scenario() {
    local d="$tmp/$1"
    mkdir -p "$d"
    cat >"$d/durations.txt"
    cat >"$d/weft.ini" <<EOF
[run]
plugin = exec
plugin_path = $plugins
items = lines:durations.txt
threads = $2
output = none
journal = off

[args]
command = sleep {}
EOF
    sed 's/^journal = off$/journal = off\nisolate = process/' "$d/weft.ini" >"$d/weft-process.ini"
}

names=(A B C D)
declare -A workers desc ideal
workers[A]=16; desc[A]="16 x 1 s"
workers[B]=4;  desc[B]="4 x 1 s"
workers[C]=50; desc[C]="100 x 0.5 s"
workers[D]=4;  desc[D]="256, k%64==0: 1 s, else 0.01 s"

for _ in $(seq 16); do echo 1; done | scenario A 16
for _ in $(seq 4); do echo 1; done | scenario B 4
for _ in $(seq 100); do echo 0.5; done | scenario C 50
for k in $(seq 0 255); do
    if [ $((k % 64)) -eq 0 ]; then echo 1; else echo 0.01; fi
done | scenario D 4
for s in "${names[@]}"; do
    ideal[$s]=$(ideal_of "${workers[$s]}" "$tmp/$s/durations.txt")
done

echo "bench_uneven: $weft (plugins $plugins)"
echo "cpus=$(nproc) rounds=$rounds; loadavg before: $(cat /proc/loadavg 2>/dev/null || echo '?')"

declare -A tw tq tx tp
for _ in $(seq "$rounds"); do
    for s in "${names[@]}"; do
        d="$tmp/$s"
        n=${workers[$s]}
        tw[$s]+="$(python3 "$timer" "$weft" run "$d/weft.ini" -q) "
        tq[$s]+="$(python3 "$timer" "$weft" run "$d/weft-process.ini" -q) "
        # shellcheck disable=SC2016 # $1 and $2 are the inner sh's
        tx[$s]+="$(python3 "$timer" sh -c 'exec xargs -P "$1" -n 1 sleep < "$2"' sh "$n" \
                   "$d/durations.txt") "
        tp[$s]+="$(python3 "$pybase" "$n" "$d/durations.txt") "
    done
done

# The table: medians of the times, medians of the per-round ratios.
{
    for s in "${names[@]}"; do
        echo "$s|${desc[$s]}|${workers[$s]}|${ideal[$s]}|${tw[$s]}|${tq[$s]}|${tx[$s]}|${tp[$s]}"
    done
} | python3 -c '
import statistics as st, sys
med = st.median
print("%-3s %-32s %4s %8s %8s %8s %8s %8s %10s %10s %11s %10s" % ("", "scenario", "N",
      "ideal s", "weft s", "proc s", "xargs s", "python s", "weft/ideal", "weft/xargs",
      "weft/python", "proc/ideal"))
for line in sys.stdin:
    s, desc, n, ideal, w, q, x, p = line.rstrip("\n").split("|")
    ideal = float(ideal)
    w, q, x, p = ([float(v) for v in col.split()] for col in (w, q, x, p))
    print("%-3s %-32s %4s %8.3f %8.3f %8.3f %8.3f %8.3f %10.2f %10.2f %11.2f %10.2f" % (
        s, desc, n, ideal, med(w), med(q), med(x), med(p), med(a / ideal for a in w),
        med(a / b for a, b in zip(w, x)), med(a / b for a, b in zip(w, p)),
        med(a / ideal for a in q)))
print("(weft: thread mode; proc: weft with isolate = process)")
'
echo "(times: medians of $rounds rounds; ratios: medians of the per-round ratios)"
echo "loadavg after: $(cat /proc/loadavg 2>/dev/null || echo '?')"
exit 0
