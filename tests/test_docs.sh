#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The documentation cannot rot silently:
#  - the man pages (as the build configures them) format without a groff
#    warning and with every @PLACEHOLDER@ filled in;
#  - every option `weft --help` / `weft run --help` prints, every command,
#    and every [run] key core/input/config.c knows is documented in the man pages,
#    the README and the bash completion (and the zsh and fish ones);
#  - docs/plugins.md holds examples/greet/greet.c and plugins/plugin.map
#    verbatim, and its second example plugin builds, loads and runs;
#  - every config example in weft.ini(5) passes `weft check`.
set -euo pipefail
build=$WEFT_BUILD_ROOT
src=$WEFT_SOURCE_ROOT
weft=$WEFT_EXE
# weft refuses plugins that group or others may write: keep what we build 0755.
umask 022
tmp=$(mktemp -d /tmp/weft-docs-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "test_docs: FAIL: $*" >&2
    failures=$((failures + 1))
}

# The C compiler: the build's (meson passes it as the arguments), else cc.
cc_cmd=("$@")
[ ${#cc_cmd[@]} -gt 0 ] || cc_cmd=("${CC:-cc}")

# Linted as the build configured them; their text checked in the sources.
built_man1=$build/man/weft.1
built_man5=$build/man/weft.ini.5
man1=$src/man/weft.1
man5=$src/man/weft.ini.5
readme=$src/README.md
completion=$src/completion/weft.bash
guide=$src/docs/plugins.md

# ---- man pages: lint --------------------------------------------------------
command -v groff >/dev/null || {
    echo "test_docs: groff is missing (bash .ci/deps installs groff-base)" >&2
    exit 1
}
for page in "$built_man1" "$built_man5"; do
    [ -f "$page" ] || { fail "$page was not configured by the build"; continue; }
    warnings=$(groff -man -ww -z "$page" 2>&1) || fail "groff failed on $page"
    [ -z "$warnings" ] || fail "groff warns about $page:
$warnings"
    if command -v man >/dev/null; then
        warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || true
        [ -z "$warnings" ] || fail "man --warnings about $page:
$warnings"
    fi
    left=$(grep -o '@[A-Z_]*@' "$page" || true)
    [ -z "$left" ] || fail "$page still holds $left"
done

# A name as it is written in roff: every '-' escaped as '\-'.
roff() { printf '%s' "$1" | sed 's/-/\\-/g'; }

# ---- every option and command is documented -----------------------------------
options=$({ "$weft" --help; "$weft" run --help; "$weft" check --help; "$weft" plugins --help;
    "$weft" log --help; } |
    grep -oE '(^|[ [|])--[a-z][a-z-]*' | sed 's/^[ [|]//' | sort -u)
[ -n "$options" ] || fail "no option found in weft --help"
for opt in $options; do
    grep -qF -- "$(roff "$opt")" "$man1" || fail "weft(1) does not describe $opt"
    case $opt in --help | --version | --names) ;;
    *) grep -qF -- "$opt" "$readme" || fail "README.md does not mention $opt" ;;
    esac
done
for opt in $("$weft" run --help | grep -oE '^ +--[a-z][a-z-]*' | sort -u); do
    grep -qE -- "(^|[ \"])$opt( |\"|$)" "$completion" || fail "completion does not offer $opt"
done
for short in -j -o -q -h -V -0; do
    grep -qF -- "$(roff "$short")" "$man1" || fail "weft(1) does not describe $short"
done

commands=$(sed -n 's/.*commands\[\] = {\(.*\)};.*/\1/p' "$src/core/cli/main.c" | grep -oE '"[a-z]+"' |
    tr -d '"')
[ -n "$commands" ] || fail "no commands[] table found in core/cli/main.c"
for c in $commands; do
    grep -qE "^\.BI? $c( |$)" "$man1" || fail "weft(1) has no COMMANDS entry for $c"
    grep -qw -- "$c" <(sed -n 's/.*_weft_reply "$cur" \(run check.*\)/\1/p' "$completion") ||
        fail "completion does not offer the command $c"
done

# [run] keys: the table in core/input/config.c.
keys=$(sed -n '/run_keys\[\] = {/,/^};/p' "$src/core/input/config.c" | grep -oE '\{"[a-z_]+"' | tr -d '{"')
[ "$(echo "$keys" | wc -w)" -ge 10 ] || fail "found only '$keys' in core/input/config.c's run_keys"
completion_keys=$(sed -n 's/^_weft_run_keys="\(.*\)"/\1/p' "$completion")
for k in $keys; do
    grep -qE "^\.BI $k \"" "$man5" || fail "weft.ini(5) does not describe [run] $k"
    grep -qE "^\| \`$k\` \|" "$readme" || fail "README.md's config table lacks $k"
    grep -qw -- "$k" <<<"$completion_keys" || fail "completion's _weft_run_keys lacks $k"
done
for k in $completion_keys; do
    grep -qw -- "$k" <<<"$keys" || fail "completion offers run.$k, which config.c does not know"
done
# The zsh and fish completions: the same keys, every run option.
zsh_completion=$src/completion/_weft
fish_completion=$src/completion/weft.fish
zsh_keys=$(sed -n 's/^_weft_run_keys=(\(.*\))$/\1/p' "$zsh_completion")
fish_keys=$(sed -n 's/^ *printf .%s.n. \(plugin .*\)$/\1/p' "$fish_completion")
[ "$zsh_keys" = "$completion_keys" ] || fail "_weft's _weft_run_keys '$zsh_keys' differ from bash's"
[ "$fish_keys" = "$completion_keys" ] || fail "weft.fish's __weft_run_keys '$fish_keys' differ from bash's"
for opt in $("$weft" run --help | grep -oE '^ +(-[a-z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+'); do
    grep -qF -- "$opt" "$zsh_completion" || fail "_weft does not offer $opt"
    grep -qE -- "-l ${opt#--}( |$)" "$fish_completion" || fail "weft.fish does not offer $opt"
done

# weft log's options, in the three completions.
for opt in $("$weft" log --help | grep -oE '^ +(-[a-z0-9], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+'); do
    grep -qE -- "(^|[ \"])$opt( |\"|$)" "$completion" || fail "completion does not offer log $opt"
    grep -qF -- "$opt" "$zsh_completion" || fail "_weft does not offer log $opt"
    grep -qE -- "-l ${opt#--}( |$)" "$fish_completion" || fail "weft.fish does not offer log $opt"
done

# Exit statuses: core/run/run.h's enum, in the README table and weft(1).
for n in $(grep -oE 'WEFT_EXIT_[A-Z_]+ = [0-9]+' "$src/core/run/run.h" | grep -oE '[0-9]+$'); do
    grep -qE "^\| $n \|" "$readme" || fail "README.md's exit status table lacks $n"
    grep -qx -- ".B $n" "$man1" || fail "weft(1)'s EXIT STATUS lacks $n"
done

# ---- docs/plugins.md: verbatim copies ---------------------------------------------
# The lines between "<!-- begin NAME -->" + fence and the closing fence.
block() {
    awk -v name="$2" '
        $0 == "<!-- begin " name " -->" { on = 1; getline; next }
        on && /^```$/ { exit }
        on { print }' "$1"
}
check_verbatim() { # name in the guide, file
    block "$guide" "$1" >"$tmp/block"
    [ -s "$tmp/block" ] || { fail "docs/plugins.md has no block '$1'"; return; }
    diff -u "$2" "$tmp/block" >"$tmp/diff" ||
        fail "docs/plugins.md's copy of $1 differs from the file:
$(cat "$tmp/diff")"
}
check_verbatim examples/greet/greet.c "$src/examples/greet/greet.c"
check_verbatim plugins/plugin.map "$src/plugins/plugin.map"

# ---- docs/plugins.md: the output-folder example builds and runs -------------------
block "$guide" "docs example: stamp.c" >"$tmp/stamp.c"
if [ ! -s "$tmp/stamp.c" ]; then
    fail "docs/plugins.md has no stamp.c example"
elif ! "${cc_cmd[@]}" -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -shared -fPIC \
    -fvisibility=hidden -I"$src/include" -Wl,--version-script="$src/plugins/plugin.map" \
    "$tmp/stamp.c" -o "$tmp/stamp.so" 2>"$tmp/cc.err"; then
    fail "the stamp.c example of docs/plugins.md does not build:
$(cat "$tmp/cc.err")"
else
    exported=$(nm -D --defined-only "$tmp/stamp.so" | awk '{ print $3 }' | grep -v '^_' || true)
    [ "$exported" = weft_plugin_entry ] ||
        fail "stamp.so exports '$exported', not weft_plugin_entry alone"
    "$weft" describe "$tmp/stamp.so" >"$tmp/describe" 2>&1 ||
        fail "weft describe stamp.so: $(cat "$tmp/describe")"
    grep -q 'output folder' "$tmp/describe" || fail "describe shows no output folder argument"
    mkdir "$tmp/job"
    printf '[run]\nplugin = ../stamp.so\nitems = 3\noutput = -\n\n[args]\ndir = out\n' \
        >"$tmp/job/stamp.ini"
    if ! "$weft" run "$tmp/job/stamp.ini" -q >"$tmp/out" 2>"$tmp/err"; then
        fail "weft run of the stamp example failed: $(cat "$tmp/err")"
    else
        want=$'"stamp_0000.txt"\n"stamp_0001.txt"\n"stamp_0002.txt"'
        [ "$(cat "$tmp/out")" = "$want" ] || fail "the stamp example printed: $(cat "$tmp/out")"
        for i in 0 1 2; do
            [ "$(cat "$tmp/job/out/stamp_000$i.txt" 2>/dev/null)" = "item $i" ] ||
                fail "out/stamp_000$i.txt does not hold 'item $i'"
        done
    fi
fi

# ---- weft.ini(5): its config examples are valid -------------------------------------
# Each .EX/.EE block holding a [run] section, unescaped from roff.
mkdir "$tmp/ex"
awk -v dir="$tmp/ex" '
    /^\.EX$/ { n++; on = 1; file = dir "/example" n ".ini"; next }
    /^\.EE$/ { on = 0; next }
    on { gsub(/\\-/, "-"); gsub(/\\e/, "\\"); gsub(/^\\&/, ""); print > file }' \
    "$man5"
printf 'https://example.org/a\n' >"$tmp/ex/urls.txt"
printf 'Ada\n' >"$tmp/ex/names.txt" # the worker example's items
checked=0
for ex in "$tmp"/ex/example*.ini; do
    grep -q '^\[run\]' "$ex" || continue
    checked=$((checked + 1))
    WEFT_PLUGIN_PATH=$WEFT_PLUGINS "$weft" check "$ex" >"$tmp/check" 2>&1 ||
        fail "weft.ini(5)'s example $(basename "$ex") does not pass weft check:
$(cat "$ex")
$(cat "$tmp/check")"
done
[ "$checked" -ge 3 ] || fail "found only $checked config examples in weft.ini(5)"

if [ "$failures" -gt 0 ]; then
    echo "test_docs: $failures failures" >&2
    exit 1
fi
echo "test_docs: ok"
