#!/usr/bin/env zsh
# SPDX-License-Identifier: MIT
# Prints, one a line, the matches zsh's completion system offers for the
# command line "$2" with the cursor at its end, completion/_weft loaded
# from the folder $1 by a real compinit.  The line is typed (then TAB)
# into an interactive `zsh -f` on a pseudo-terminal (zpty); a compadd
# wrapper prints each match after a marker (spelled in two halves, so that
# the echo of the typed definitions does not hold it).
# Exit status 77 (skipped) without the zsh/zpty module.
emulate -L zsh
zmodload zsh/zpty 2>/dev/null || exit 77
local dir=$1 line=$2 out
# compinit's dump: made by the first call, reused by the next ones.
local comp_dump=${TMPDIR:-/tmp}/weft-zcompdump

zpty z zsh -f -i
# No prompt, no line editor surprises; the matches listed, never asked.
zpty -w z "PROMPT= RPROMPT= PS2= ; unset zle_bracketed_paste; setopt no_beep"
zpty -w z "fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -d ${(q)comp_dump}"
zpty -w z 'zstyle ":completion:*" insert-tab false; zstyle ":completion:*" menu no'
zpty -w z 'compadd() {
    local -a hits
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
    builtin compadd -A hits "$@"
    local h
    for h in $hits; do print -r -- "<<MA""TCH>>$h"; done
    builtin compadd "$@"
}'
zpty -w z 'weft-finish() { print -r -- "<<DO""NE>>"; }; zle -N weft-finish; bindkey "^X" weft-finish'
zpty -n -w z "$line"$'\t\C-x'
# Read until the marker the ^X widget prints after the completion (10 s at most).
local all="" tries=0
while [[ $all != *"<<DONE>>"* ]] && (( tries++ < 200 )); do
    if zpty -r -t z out; then
        all+=$out
    else
        sleep 0.05
    fi
done
zpty -d z
local l
for l in ${(f)all}; do
    l=${l%$'\r'}
    [[ $l == *"<<MATCH>>"* ]] && print -r -- ${l##*<<MATCH>>}
done | LC_ALL=C sort -u
