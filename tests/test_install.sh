#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs weft into a temporary root, runs a shipped config with the
# installed binary and nothing else set, then builds the out-of-tree example
# plugin against the installed pkg-config file and runs it.
set -eu
build=$WEFT_BUILD_ROOT
src=$WEFT_SOURCE_ROOT
tmp=$(mktemp -d /tmp/weft-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }

DESTDIR="$tmp/root" meson install -C "$build" --no-rebuild --quiet >/dev/null
weft=$(find "$tmp/root" -path '*/bin/weft' -type f)
[ -x "$weft" ] || fail "no installed bin/weft"
pc=$(find "$tmp/root" -name weft.pc)
[ -n "$pc" ] || fail "no installed weft.pc"
ls "$(dirname "$pc")/../weft/plugins/pow4.so" >/dev/null || fail "no installed pow4.so"
# libweft.so is the pool alone: it needs libc and nothing the runner uses,
# and its pkg-config file asks for no -dev package.
lib=$(find "$tmp/root" -name 'libweft.so.*' -type f | head -n 1)
[ -n "$lib" ] || fail "no installed libweft.so"
# (A sanitizer build's runtimes are the build's, not the library's.)
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
    grep -Ev '^lib(a|t|l|ub)san\.so' | sort | tr '\n' ' ')
case $needed in
"ld-linux-x86-64.so.2 libc.so.6 " | "libc.so.6 " ) ;;
*) fail "libweft.so needs $needed(want libc only)" ;;
esac
! grep -Eq 'inih|cjson|xxhash' "$pc" || fail "weft.pc requires the runner's libraries: $(cat "$pc")"

# Man pages and bash completion, where man and bash-completion look under
# the prefix: PREFIX/share/man/man{1,5}, PREFIX/share/bash-completion/completions.
root_prefix=$(dirname "$(dirname "$weft")")
mandir=$root_prefix/share/man
for page in man1/weft.1 man5/weft.ini.5; do
    [ -f "$mandir/$page" ] || fail "no installed $mandir/$page"
    ! grep -q '@[A-Z_]*@' "$mandir/$page" || fail "$page holds an unfilled @PLACEHOLDER@"
done
libdir=$(dirname "$(dirname "$pc")")
libdir=${libdir#"$tmp/root"}
grep -qF "$(printf '%s' "$libdir/weft/plugins" | sed 's/-/\\-/g')" "$mandir/man1/weft.1" ||
    fail "weft.1 does not name the plugin folder $libdir/weft/plugins"
if command -v man >/dev/null; then
    found=$(MANPATH=$mandir man -w weft) || fail "man -w weft finds nothing in $mandir"
    [ "$found" = "$mandir/man1/weft.1" ] || fail "man -w weft gave '$found'"
    found=$(MANPATH=$mandir man -w 5 weft.ini) || fail "man -w 5 weft.ini finds nothing"
    [ "$found" = "$mandir/man5/weft.ini.5" ] || fail "man -w 5 weft.ini gave '$found'"
fi
completion=$root_prefix/share/bash-completion/completions/weft
[ -f "$completion" ] || fail "no installed $completion"
# bash-completion loads completions/NAME for the command NAME: source it as
# it would and complete `weft <TAB>`.
got=$(bash -c 'source "$1" && complete -p weft >/dev/null &&
    COMP_WORDS=(weft "") COMP_CWORD=1 && _weft && echo "${COMPREPLY[*]}"' _ "$completion") ||
    fail "the installed completion does not load"
[ "$got" = "run check describe plugins log --help --version" ] ||
    fail "the installed completion completes 'weft <TAB>' to '$got'"
for f in share/zsh/site-functions/_weft share/fish/vendor_completions.d/weft.fish; do
    [ -f "$root_prefix/$f" ] || fail "no installed $root_prefix/$f"
done

# The installed binary finds its plugins by itself (relative to bin/).
printf '[run]\nplugin = pow4\nitems = 100\n' > "$tmp/pow4.ini"
out=$(env -u WEFT_PLUGIN_PATH "$weft" run "$tmp/pow4.ini" -q)
[ "$out" = "1950333330" ] || fail "pow4 over 0..99 gave '$out', want 1950333330"

# The worker plugin finds the installed weft_worker.py beside itself (and
# puts it on its workers' PYTHONPATH): nothing else set.
plugins=$(dirname "$pc")/../weft/plugins
[ -f "$plugins/python/weft_worker.py" ] || fail "no installed $plugins/python/weft_worker.py"
printf 'import weft_worker\n@weft_worker.task\ndef process(item, k: int = 1):\n    return item.number * k\nweft_worker.run()\n' >"$tmp/double.py"
printf '[run]\nplugin = worker\nitems = 3\noutput = -\nformat = jsonl\n[args]\ncommand = /usr/bin/python3 -u double.py\n[task]\nk = 2\n' >"$tmp/double.ini"
out=$(cd / && env -u WEFT_PLUGIN_PATH -u PYTHONPATH "$weft" run "$tmp/double.ini" -q) ||
    fail "the installed worker plugin did not run a weft_worker.py task"
[ "$out" = "$(printf '0\n2\n4')" ] || fail "the installed worker gave '$out', want 0 2 4"
for f in worker-protocol.md examples/worker/noise_png.py examples/worker/upper.awk; do
    [ -f "$root_prefix/share/doc/weft/$f" ] || fail "no installed share/doc/weft/$f"
done

# The SDK's other parts: the version script (named by weft.pc), the plugin
# guide and the example, under share/.
map=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=pluginmap weft)
[ -f "$map" ] || fail "weft.pc's pluginmap ($map) is not installed"
cmp -s "$map" "$src/plugins/plugin.map" || fail "the installed plugin.map differs"
docdir=$root_prefix/share/doc/weft
for f in plugins.md guarantees.md examples/greet/greet.c examples/greet/meson.build; do
    [ -f "$docdir/$f" ] || fail "no installed $docdir/$f"
done
# By hand, as docs/plugins.md says: the installed header and map, cc, libc.
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags weft)
cc -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden $cflags \
    -Wl,--version-script="$map" "$docdir/examples/greet/greet.c" -o "$tmp/greet-by-hand.so" ||
    fail "greet.c does not build with the installed header and plugin.map alone"
exported=$(nm -D --defined-only "$tmp/greet-by-hand.so" | awk '{print $3}' | grep -v '^_' | sort | tr '\n' ' ')
[ "$exported" = "weft_plugin_entry " ] || fail "greet-by-hand.so exports: $exported"

# The example builds against the installed SDK only.
cp -r "$src/examples/greet" "$tmp/greet"
PKG_CONFIG_PATH=$(dirname "$pc") meson setup "$tmp/greet/build" "$tmp/greet" >/dev/null \
    || fail "meson setup of the example failed"
meson compile -C "$tmp/greet/build" >/dev/null || fail "the example does not build"
if nm -D --undefined-only "$tmp/greet/build/greet.so" | grep -q weft_; then
    fail "greet.so links against weft symbols"
fi

out=$(env -u WEFT_PLUGIN_PATH "$weft" run "$tmp/greet/greet.ini" -q \
    --set run.plugin_path=build --set run.format=jsonl)
want='"Good morning, Ada!"
"Good morning, Grace!"
"Good morning, Ken Thompson!"
"Good morning, Barbara \"Liskov\"!"'
[ "$out" = "$want" ] || fail "greet gave:
$out"
echo "test_install: ok"
