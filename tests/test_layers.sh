#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The rooms of core/ (docs/architecture.md) form no circle: a room includes
# only the headers of rooms before it in the order below (and its own).
set -euo pipefail
src=${WEFT_SOURCE_ROOT:?}
order=(util pool input output host journal run cli)
rank() { local i; for i in "${!order[@]}"; do [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }

# Which room each header of core/ lives in.
declare -A room_of
for h in "$src"/core/*.h; do room_of[$(basename "$h")]=util; done
for d in "$src"/core/*/; do
  r=$(basename "$d")
  [ "$(rank "$r")" -ge 0 ] || { echo "test_layers: core/$r is not in the room order" >&2; exit 1; }
  for h in "$d"*.h; do room_of[$(basename "$h")]=$r; done
done

bad=0 checked=0
for f in "$src"/core/*.[ch] "$src"/core/*/*.[ch]; do
  rel=${f#"$src"/core/}
  case $rel in */*) r=${rel%%/*} ;; *) r=util ;; esac
  while read -r h; do
    other=${room_of[$h]:-}
    [ -n "$other" ] || continue # a system or public header
    checked=$((checked + 1))
    if [ "$(rank "$other")" -gt "$(rank "$r")" ]; then
      echo "test_layers: core/$rel ($r) includes $h ($other), a later room" >&2
      bad=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
[ "$checked" -gt 50 ] || { echo "test_layers: only $checked includes checked" >&2; exit 1; }
[ "$bad" = 0 ] && echo "test_layers: $checked includes, no room uses a later one"
exit "$bad"
