#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bash completion (completion/weft.bash), driven the way bash drives it:
# source the file, set COMP_WORDS / COMP_CWORD (split at '=' and ':' as
# COMP_WORDBREAKS makes bash split them), call _weft, read COMPREPLY.
set -uo pipefail
src=$WEFT_SOURCE_ROOT
weft=$WEFT_EXE
# weft refuses plugins that group or others may write: keep what we build 0755.
umask 022
tmp=$(mktemp -d /tmp/weft-completion-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "test_completion: FAIL: $*" >&2
    failures=$((failures + 1))
}

# shellcheck source=../completion/weft.bash
source "$src/completion/weft.bash" || { echo "cannot source weft.bash" >&2; exit 1; }
complete -p weft >/dev/null 2>&1 || fail "sourcing weft.bash registers no completion for weft"

# complete WORD... : the reply for the last word, one per line, sorted.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _weft
    printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort
}
# expect "WHAT" "want1 want2" WORD...: every wanted word is in the reply.
expect() {
    local what=$1 want=$2 got w
    shift 2
    got=$(complete_words "$@")
    for w in $want; do
        grep -qxF -- "$w" <<<"$got" || fail "$what: no '$w' in the reply:
$got"
    done
}
# expect_not "WHAT" "word..." WORD...: none of them is in the reply.
expect_not() {
    local what=$1 bad=$2 got w
    shift 2
    got=$(complete_words "$@")
    for w in $bad; do
        grep -qxF -- "$w" <<<"$got" && fail "$what: '$w' should not be offered:
$got"
    done
}
# expect_exactly "WHAT" "reply" WORD...
expect_exactly() {
    local what=$1 want got
    want=$(tr ' ' '\n' <<<"$2" | LC_ALL=C sort)
    shift 2
    got=$(complete_words "$@")
    [ "$got" = "$want" ] || fail "$what: want
$want
got
$got"
}

export WEFT_PLUGIN_PATH=$WEFT_PLUGINS

# weft <TAB>
expect_exactly "weft <TAB>" "run check describe plugins log --help --version" "$weft" ""
expect_exactly "weft d<TAB>" "describe" "$weft" d

# weft run <TAB>, in a folder with a.ini: configs and folders, nothing else.
mkdir -p "$tmp/cwd/sub"
touch "$tmp/cwd/a.ini" "$tmp/cwd/b.txt"
(
    cd "$tmp/cwd" || exit 1
    failures=0
    expect "weft run <TAB>" "a.ini sub" "$weft" run ""
    expect_not "weft run <TAB>" "b.txt" "$weft" run ""
    expect "weft check <TAB>" "a.ini" "$weft" check ""
    expect_exactly "weft run a<TAB>" "a.ini" "$weft" run a
    exit "$failures"
) || failures=$((failures + $?))

# weft describe <TAB>: every plugin in the folder WEFT_PLUGIN_PATH names.
plugins=$(cd "$WEFT_PLUGINS" && ls -- *.so | sed 's/\.so$//')
[ -n "$plugins" ] || fail "no plugins in $WEFT_PLUGINS"
expect "weft describe <TAB>" "$plugins" "$weft" describe ""
expect_exactly "weft describe noise<TAB>" "noise_png" "$weft" describe noise
expect_exactly "weft describe add_one <TAB>" "" "$weft" describe add_one ""

# The same from a weft without `plugins --names`: the names come from the
# first column of `weft plugins`.
cat >"$tmp/oldweft" <<EOF
#!/bin/sh
[ "\$1 \$2" = "plugins --names" ] && { echo "usage: weft plugins" >&2; exit 2; }
exec "$weft" "\$@"
EOF
chmod +x "$tmp/oldweft"
expect "old weft describe <TAB>" "$plugins" "$tmp/oldweft" describe ""

# weft run x.ini --<TAB>: every option `weft run --help` lists.
run_options=$("$weft" run --help | grep -oE '^ +(-[a-z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+')
[ -n "$run_options" ] || fail "weft run --help lists no options"
expect "weft run x.ini --<TAB>" "$run_options --set --resume --threads --output" \
    "$weft" run x.ini --
expect_not "weft run x.ini --<TAB>" "--names --version" "$weft" run x.ini --
expect_exactly "weft run x.ini --re<TAB>" "--resume --resume=auto --retry-failed --restart" \
    "$weft" run x.ini --re
expect_not "weft check x.ini --<TAB>" "--resume --restart" "$weft" check x.ini --
expect "weft check x.ini --<TAB>" "--set --threads --output" "$weft" check x.ini --

# --set: run keys, and the args of the config's plugin (from weft describe).
cfg=$tmp/job.ini
printf '[run]\nplugin = add_one\nitems = 3\n' >"$cfg"
expect "--set <TAB>" "run.threads= run.isolate= run.halt= run.journal= args.step=" \
    "$weft" run "$cfg" --set ""
expect_exactly "--set args.<TAB>" "args.step=" "$weft" run "$cfg" --set args.
# [task] keys: the config's own (the worker plugin's task arguments).
wcfg=$tmp/worker.ini
printf '[run]\nplugin = worker\nitems = 3\n[args]\ncommand = python3 t.py\n[task]\nsize = 1\nname = x\n' >"$wcfg"
expect_exactly "--set task.<TAB>" "task.name= task.size=" "$weft" run "$wcfg" --set task.
# "run.format=" is three words for bash: run.format, =, and what follows.
expect_exactly "--set run.format=<TAB>" "json jsonl csv tsv npy raw none" \
    "$weft" run "$cfg" --set run.format =
expect_exactly "--set run.format=js<TAB>" "json jsonl" "$weft" run "$cfg" --set run.format = js
expect_exactly "--set run.sync=<TAB>" "batch item none" "$weft" run "$cfg" --set run.sync =
expect_exactly "--set run.isolate=<TAB>" "thread process" "$weft" run "$cfg" --set run.isolate =
expect_exactly "--set=run.ord<TAB>" "run.order=" "$weft" run "$cfg" --set = run.ord
expect_exactly "--progress=<TAB>" "line json off" "$weft" run "$cfg" --progress =
# An argument of a plugin beside the config, not on the search path.
mkdir "$tmp/beside"
cp "$WEFT_PLUGINS/add_one.so" "$tmp/beside/mine.so"
printf '[run]\nplugin = mine\nitems = 3\n\n[args]\n' >"$tmp/beside/mine.ini"
expect "--set args.<TAB>, plugin beside the config" "args.step=" \
    "$weft" run "$tmp/beside/mine.ini" --set args.

# Option values: files after -o, nothing to guess after -j.
(
    cd "$tmp/cwd" || exit 1
    failures=0
    expect "-o <TAB>" "a.ini b.txt sub" "$weft" run a.ini -o ""
    expect_exactly "-j <TAB>" "" "$weft" run a.ini -j ""
    exit "$failures"
) || failures=$((failures + $?))

expect_exactly "weft plugins <TAB>" "--names --help" "$weft" plugins ""

# The one-liner: -p takes a plugin name; with -p there is no config to offer.
expect "run -p <TAB>" "$plugins" "$weft" run -p ""
expect "run --plugin <TAB>" "$plugins" "$weft" run --plugin ""
expect "run --<TAB>" "--plugin --items" "$weft" run --
(
    cd "$tmp/cwd" || exit 1
    failures=0
    expect_not "run -p exec <TAB>" "a.ini" "$weft" run -p exec ""
    expect "run -p exec <TAB>" "--items --threads" "$weft" run -p exec ""
    exit "$failures"
) || failures=$((failures + $?))

# weft log: a journal or a config (any file), then its options.
(
    cd "$tmp/cwd" || exit 1
    failures=0
    touch out.json.journal
    expect "weft log <TAB>" "a.ini b.txt out.json.journal sub" "$weft" log ""
    expect_exactly "weft log a.ini <TAB>" "--json --failed --null --set --help" "$weft" log a.ini ""
    expect_exactly "weft log a.ini --f<TAB>" "--failed" "$weft" log a.ini --f
    expect "weft log a.ini --set <TAB>" "run.journal= run.output=" "$weft" log a.ini --set ""
    exit "$failures"
) || failures=$((failures + $?))

if [ "$failures" -gt 0 ]; then
    echo "test_completion: $failures failures" >&2
    exit 1
fi
echo "test_completion: ok"
