#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The zsh and fish completions (completion/_weft, completion/weft.fish) in
# the real shells, on the cases tests/test_completion.sh gives bash:
#   zsh   compinit loads _weft from completion/; the line is typed into an
#         interactive zsh on a pseudo-terminal and TAB pressed
#         (tests/completion_zsh_capture.zsh prints what compadd was given);
#   fish  the file is sourced and `complete -C LINE` asked.
# Usage: test_completion_shells.sh zsh|fish.  Exit status 77 (skipped) when
# that shell is not installed (bash .ci/deps installs both).
set -uo pipefail
shell=${1:?usage: test_completion_shells.sh zsh|fish}
src=$WEFT_SOURCE_ROOT
weft=$WEFT_EXE
command -v "$shell" >/dev/null || { echo "test_completion_shells: no $shell: skipped"; exit 77; }
umask 022
tmp=$(mktemp -d /tmp/weft-completion-$shell-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "test_completion_shells ($shell): FAIL: $*" >&2
    failures=$((failures + 1))
}
export WEFT_PLUGIN_PATH=$WEFT_PLUGINS

# reply LINE: the candidates for the last word of LINE (the cursor at its
# end), one per line, sorted; the part of the word up to its last '=' and a
# folder's trailing '/' taken off, as readline shows them in bash.
reply() {
    local line=$1 cur=${1##* } done
    done=${cur%"${cur##*=}"}
    case $shell in
    zsh) TMPDIR=$tmp zsh -f "$src/tests/completion_zsh_capture.zsh" "$src/completion" "$line" ;;
    fish) fish -N -c 'source $argv[1]; complete -C $argv[2]' "$src/completion/weft.fish" "$line" |
        cut -f1 ;;
    esac | while IFS= read -r w; do
        w=${w#"$done"}
        printf '%s\n' "${w%/}"
    done | LC_ALL=C sort -u
}
expect() { # WHAT "want..." LINE: every wanted word is offered
    local got w
    got=$(reply "$3")
    for w in $2; do
        grep -qxF -- "$w" <<<"$got" || fail "$1: no '$w' in the reply:
$got"
    done
}
expect_not() { # WHAT "word..." LINE: none of them is offered
    local got w
    got=$(reply "$3")
    for w in $2; do
        grep -qxF -- "$w" <<<"$got" && fail "$1: '$w' should not be offered:
$got"
    done
}
expect_exactly() { # WHAT "reply" LINE
    local want got
    want=$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | LC_ALL=C sort)
    got=$(reply "$3" | sed '/^$/d')
    [ "$got" = "$want" ] || fail "$1: want
$want
got
$got"
}

expect_exactly "weft <TAB>" "run check describe plugins log" "$weft "
expect_exactly "weft d<TAB>" "describe" "$weft d"

# Configs and folders, nothing else.
mkdir -p "$tmp/cwd/sub"
touch "$tmp/cwd/a.ini" "$tmp/cwd/b.txt"
(
    cd "$tmp/cwd" || exit 1
    failures=0
    expect "weft run <TAB>" "a.ini sub" "$weft run "
    expect_not "weft run <TAB>" "b.txt" "$weft run "
    expect "weft check <TAB>" "a.ini" "$weft check "
    expect_exactly "weft run a<TAB>" "a.ini" "$weft run a"
    expect "-o <TAB>" "a.ini b.txt sub" "$weft run a.ini -o "
    exit "$failures"
) || failures=$((failures + $?))

plugins=$(cd "$WEFT_PLUGINS" && ls -- *.so | sed 's/\.so$//')
[ -n "$plugins" ] || fail "no plugins in $WEFT_PLUGINS"
expect "weft describe <TAB>" "$plugins" "$weft describe "
expect_exactly "weft describe noise<TAB>" "noise_png" "$weft describe noise"
expect_not "weft describe add_one <TAB>" "$plugins" "$weft describe add_one "

# Every option `weft run --help` lists; check has none of run's own.
run_options=$("$weft" run --help | grep -oE '^ +(-[a-z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+')
expect "weft run x.ini --<TAB>" "$run_options" "$weft run x.ini --"
expect_not "weft run x.ini --<TAB>" "--names --version" "$weft run x.ini --"
expect_exactly "weft run x.ini --re<TAB>" "--resume --retry-failed --restart" "$weft run x.ini --re"
expect_not "weft check x.ini --<TAB>" "--resume --restart --quiet" "$weft check x.ini --"
expect "weft check x.ini --<TAB>" "--set --threads --output" "$weft check x.ini --"
expect_exactly "weft plugins --<TAB>" "--names --help" "$weft plugins --"
expect "weft log x.ini --<TAB>" "--json --failed --null --set --help" "$weft log x.ini --"
expect_not "weft log x.ini --<TAB>" "--resume --threads" "$weft log x.ini --"
expect_exactly "weft log x.ini --f<TAB>" "--failed" "$weft log x.ini --f"

# --set: run keys, the args of the config's plugin, values where few.
cfg=$tmp/job.ini
printf '[run]\nplugin = add_one\nitems = 3\n' >"$cfg"
expect "--set <TAB>" "run.threads= run.isolate= run.halt= run.journal= args.step=" \
    "$weft run $cfg --set "
expect_exactly "--set args.<TAB>" "args.step=" "$weft run $cfg --set args."
wcfg=$tmp/worker.ini
printf '[run]\nplugin = worker\nitems = 3\n[args]\ncommand = python3 t.py\n[task]\nsize = 1\nname = x\n' >"$wcfg"
expect_exactly "--set task.<TAB>" "task.name= task.size=" "$weft run $wcfg --set task."
expect_exactly "--set run.format=<TAB>" "json jsonl csv tsv npy raw none" "$weft run $cfg --set run.format="
expect_exactly "--set run.format=js<TAB>" "json jsonl" "$weft run $cfg --set run.format=js"
expect_exactly "--set run.sync=<TAB>" "batch item none" "$weft run $cfg --set run.sync="
expect_exactly "--set run.isolate=<TAB>" "thread process" "$weft run $cfg --set run.isolate="
expect_exactly "--set=run.ord<TAB>" "run.order=" "$weft run $cfg --set=run.ord"
expect_exactly "--progress=<TAB>" "line json off" "$weft run $cfg --progress="
mkdir "$tmp/beside"
cp "$WEFT_PLUGINS/add_one.so" "$tmp/beside/mine.so"
printf '[run]\nplugin = mine\nitems = 3\n\n[args]\n' >"$tmp/beside/mine.ini"
expect "--set args.<TAB>, plugin beside the config" "args.step=" \
    "$weft run $tmp/beside/mine.ini --set args."
expect_exactly "-j <TAB>" "" "$weft run $cfg -j "

if [ "$failures" -gt 0 ]; then
    echo "test_completion_shells ($shell): $failures failures" >&2
    exit 1
fi
echo "test_completion_shells ($shell): ok"
