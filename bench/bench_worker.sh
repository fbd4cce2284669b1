#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What plugin = worker costs, as ratios from one run (issue 13):
#   a. per-item round trip: a trivial Python task (return item.number + 1)
#      over 10^5 items, 2 workers, JSONL to a file            target <= 20 us
#   b. the same task as one process per item (plugin = exec running
#      python3 -c ...) over 300 items: exec us/item over a's   target >= 20x
#   c. 2000 noise PNGs: examples/worker/noise_png.ini (2 workers) against
#      bench/noise_png_pool.py (multiprocessing.Pool(2).map)   target <= 1.1
# Rounds are interleaved (a b c-weft c-pool, then again) so that a slow spell
# of a shared machine hits every case alike; the table shows medians.  Every
# output is checked (line count and values, file count) so that a broken run
# cannot pass for a fast one.
#
#   bench/bench_worker.sh [WEFT]          WEFT: the weft binary (build/weft)
#   env: ROUNDS (5), PYTHON (a python3 with numpy and cv2; default: the
#        first of python3, /usr/bin/python3 that has both), BENCH_DIR (the
#        folder for the scratch files: on disk, not tmpfs; default build/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
weft=$(realpath "${1:-$repo/build/weft}")
rounds=${ROUNDS:-5}
[ -x "$weft" ] || { echo "bench_worker: no weft binary at $weft" >&2; exit 2; }

# One interpreter for every case, by its real path: a launcher shim (pyenv)
# would add tens of ms to each exec'd process and flatter the ratio.
pick_python() {
  local c
  for c in ${PYTHON:-python3 /usr/bin/python3}; do
    if command -v "$c" >/dev/null && "$c" -c 'import numpy, cv2' 2>/dev/null; then
      "$c" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  echo "bench_worker: no python3 with numpy and cv2 (apt-get install python3-opencv;" \
       "or set PYTHON)" >&2
  return 1
}
py=$(pick_python)

# The plugin puts weft_worker.py (plugins/python/ beside worker.so, in the
# build tree as installed) first on its workers' PYTHONPATH.
[ -e "$(dirname "$weft")/plugins/python/weft_worker.py" ] || {
  echo "bench_worker: no plugins/python/weft_worker.py beside $weft (build it)" >&2
  exit 1
}

base=${BENCH_DIR:-$repo/build}
mkdir -p "$base"
work=$(mktemp -d "$base/bench_worker.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ "$(stat -f -c %T "$work")" = tmpfs ]; then
  echo "bench_worker: warning: $work is on tmpfs; case c should write to disk" >&2
fi

ns() { date +%s%N; }

# Runs a command quietly; on failure shows its output and stops.
run_logged() {
  local log="$work/log.txt"
  if ! "$@" >"$log" 2>&1; then
    echo "bench_worker: failed: $*" >&2
    tail -20 "$log" >&2
    exit 1
  fi
}

n_trivial=100000
n_exec=300
n_png=2000

cat >"$work/trivial.py" <<'EOF'
import weft_worker

@weft_worker.task
def process(item):
    return item.number + 1

if __name__ == "__main__":
    weft_worker.run()
EOF
cat >"$work/trivial.ini" <<EOF
[run]
plugin = worker
items = $n_trivial
threads = 2
format = jsonl

[args]
command = $py -u trivial.py
EOF
cat >"$work/exec.ini" <<EOF
[run]
plugin = exec
items = $n_exec
threads = 2
format = jsonl

[args]
command = $py -c 'import sys; print(int(sys.argv[1])+1)' {}
capture = stdout
EOF

# Line i holds i (a: the number) or "i" (b: exec's captured text).
check_lines() { # FILE COUNT QUOTE
  local got
  got=$(wc -l <"$1")
  [ "$got" -eq "$2" ] || { echo "bench_worker: $1 has $got lines, not $2" >&2; exit 1; }
  awk -v q="$3" '$0 != q NR q { bad++ } END { exit bad > 0 }' "$1" ||
    { echo "bench_worker: $1 holds wrong values" >&2; exit 1; }
}

check_pngs() { # DIR
  local got
  got=$(find "$1" -maxdepth 1 -name 'noise_*.png' -size +1k | wc -l)
  [ "$got" -eq "$n_png" ] || { echo "bench_worker: $1 has $got PNGs, not $n_png" >&2; exit 1; }
  if find "$1" -maxdepth 1 -name '.*tmp*' | grep -q .; then
    echo "bench_worker: temporaries left in $1" >&2; exit 1
  fi
}

declare -a t_a t_b t_w t_p
for ((r = 0; r < rounds; r++)); do
  out="$work/a_$r.jsonl"
  t0=$(ns); run_logged "$weft" run "$work/trivial.ini" --quiet --output "$out"; t1=$(ns)
  check_lines "$out" "$n_trivial" ""
  rm -f "$out" "$out.journal"
  t_a+=($((t1 - t0)))

  out="$work/b_$r.jsonl"
  t0=$(ns); run_logged "$weft" run "$work/exec.ini" --quiet --output "$out"; t1=$(ns)
  check_lines "$out" "$n_exec" '"'
  rm -f "$out" "$out.journal"
  t_b+=($((t1 - t0)))

  # c: weft and Pool in alternating order, each into a fresh folder, with
  # its folder's earlier files gone (the same cold directory for both).
  wdir="$work/png_weft_$r" pdir="$work/png_pool_$r"
  # sync first: the dirty pages of earlier cases (and the last round's
  # deleted folders) are written back outside the timing, not charged to
  # whichever case runs next.
  png_weft() {
    local t0 t1
    sync
    t0=$(ns)
    run_logged "$weft" run "$repo/examples/worker/noise_png.ini" --quiet \
      --set "args.command=$py -u noise_png.py" --set "task.outdir=$wdir" \
      --output "$work/png_weft_$r.json"
    t1=$(ns)
    t_w+=($((t1 - t0)))
  }
  png_pool() {
    local t0 t1
    sync
    t0=$(ns)
    run_logged "$py" "$repo/bench/noise_png_pool.py" "$pdir" --processes 2 --count "$n_png"
    t1=$(ns)
    t_p+=($((t1 - t0)))
  }
  if ((r % 2 == 0)); then png_weft; png_pool; else png_pool; png_weft; fi
  check_pngs "$wdir"
  check_pngs "$pdir"
  "$py" -c 'import json, sys; v = json.load(open(sys.argv[1])); sys.exit(not (len(v) == int(sys.argv[2]) and v[7] == "noise_000007.png"))' \
    "$work/png_weft_$r.json" "$n_png" || { echo "bench_worker: bad png_weft_$r.json" >&2; exit 1; }
  rm -rf "$wdir" "$pdir" "$work/png_weft_$r.json" "$work/png_weft_$r.json.journal"
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ma=$(median "${t_a[@]}") mb=$(median "${t_b[@]}") mw=$(median "${t_w[@]}") mp=$(median "${t_p[@]}")
all() { printf '%s\n' "$@" | awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 / 1e9 }'; }

awk -v ma="$ma" -v mb="$mb" -v mw="$mw" -v mp="$mp" -v na="$n_trivial" -v nb="$n_exec" \
    -v np="$n_png" -v rounds="$rounds" -v py="$py" '
BEGIN {
  ua = ma / na / 1e3; ub = mb / nb / 1e3
  printf "bench_worker: %d rounds, medians; python %s; 2 workers each\n", rounds, py
  printf "%-36s %9s %12s   %s\n", "case", "wall s", "per item", "result"
  printf "%-36s %9.3f %9.2f us   %s (target <= 20 us)\n", "a. worker, trivial task, " na " items", ma / 1e9, ua, (ua <= 20 ? "ok" : "MISSED")
  printf "%-36s %9.3f %9.2f us   exec/worker = %.0fx (target >= 20x) %s\n", "b. exec python3 -c, " nb " items", mb / 1e9, ub, ub / ua, (ub / ua >= 20 ? "ok" : "MISSED")
  printf "%-36s %9.3f %9.2f us\n", "c. weft worker noise_png, " np " PNGs", mw / 1e9, mw / np / 1e3
  printf "%-36s %9.3f %9.2f us   weft/Pool = %.2f (target <= 1.1) %s\n", "c. multiprocessing.Pool, " np " PNGs", mp / 1e9, mp / np / 1e3, mw / mp, (mw / mp <= 1.1 ? "ok" : "MISSED")
}'
echo "rounds (s): a: $(all "${t_a[@]}"); b: $(all "${t_b[@]}"); c weft: $(all "${t_w[@]}"); c Pool: $(all "${t_p[@]}")"
