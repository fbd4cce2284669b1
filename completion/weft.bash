# SPDX-License-Identifier: MIT
# bash completion for weft(1).  Installed as
# <datadir>/bash-completion/completions/weft, or source it from ~/.bashrc.
# Self-contained: uses no bash-completion helpers, so sourcing this file
# alone is enough (tests/test_completion.sh does just that).

# The [run] keys (core/config.c's run_keys; tests/test_docs.sh checks that
# this list and the man page agree with it).
_weft_run_keys="plugin plugin_path items output format npy_dtype record flatten columns threads seed order isolate timeout retries halt journal keep_journal sync"

# COMP_WORDS splits "--set run.format=json" at '=' and ':' (COMP_WORDBREAKS);
# put such pieces back together, as typed.  Sets _weft_words and _weft_cword.
# A piece is glued to the previous one when either is made only of break
# characters; an empty current word is never glued (a blank precedes it).
_weft_reassemble()
{
    _weft_words=() _weft_cword=0
    local i w n=-1 glue_next=0 is_break
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        is_break=0
        [[ -n $w && -z ${w//[=:]/} ]] && is_break=1
        if ((n >= 1)) && [[ -n $w ]] && ((is_break || glue_next)); then
            _weft_words[n]+=$w
        else
            _weft_words[++n]=$w
        fi
        glue_next=$is_break
        ((i == COMP_CWORD)) && _weft_cword=$n
    done
}

# COMPREPLY from a word list, for the part of cur after its last '=' or ':'
# (readline replaces only that part).
_weft_reply()
{
    local cur=$1 word
    shift
    local done=${cur%"${cur##*[=:]}"} # what readline keeps: up to the last break
    local IFS=$' \t\n'
    COMPREPLY=()
    for word in $(compgen -W "$*" -- "$cur"); do
        COMPREPLY+=("${word#"$done"}")
    done
}

# No space after a lone completion that wants a value glued to it.
_weft_nospace_after_eq()
{
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}

# Files matching a glob, plus folders to descend into.
_weft_files()
{
    local cur=$1 glob=${2:-*}
    local IFS=$'\n'
    COMPREPLY=($(compgen -d -- "$cur") $(compgen -f -X "!$glob" -- "$cur"))
    # Sorted, without the folders compgen -f lists again.
    COMPREPLY=($(printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort -u))
    compopt -o filenames 2>/dev/null
}

# The weft being completed: the command as typed, if it runs, else weft.
_weft_exe()
{
    local exe=${_weft_words[0]}
    [[ $exe == \~/* ]] && exe=$HOME/${exe#\~/}
    command -v -- "$exe" >/dev/null 2>&1 || exe=weft
    printf '%s\n' "$exe"
}

# Plugin names on the search path: `weft plugins --names`, or the first
# column of `weft plugins` for a weft without --names.
_weft_plugin_names()
{
    local exe names
    exe=$(_weft_exe)
    if ! names=$("$exe" plugins --names 2>/dev/null); then
        names=$("$exe" plugins 2>/dev/null | awk '/^[a-z0-9_-]/ { print $1 }')
    fi
    printf '%s\n' "$names"
}

# The CONFIG argument of run/check among the words, or nothing.
_weft_config_arg()
{
    local i w
    for ((i = 2; i < ${#_weft_words[@]}; i++)); do
        ((i == _weft_cword)) && continue
        w=${_weft_words[i]}
        case $w in
        --set | -j | --threads | -o | --output | --summary-json | -p | --plugin | --items) ((i++)) ;;
        --) return ;; # the command follows
        -*) ;;
        *) printf '%s\n' "$w" && return ;;
        esac
    done
}

# `key = value` of a section of an INI file (the first match), trimmed.
_weft_ini_value()
{
    awk -v want="$2" -v key="$3" '
        /^[ \t]*\[/ { sub(/^[ \t]*\[/, ""); sub(/\].*/, ""); section = $0; next }
        section == want {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (line ~ /^[;#]/) next
            k = line; sub(/[ \t]*[=:].*/, "", k)
            if (k != key) next
            v = line; sub(/^[^=:]*[=:][ \t]*/, "", v); sub(/[ \t]+;.*/, "", v)
            sub(/[ \t]+$/, "", v)
            print v; exit
        }' "$1" 2>/dev/null
}

# The keys set in a section of an INI file.
_weft_ini_keys()
{
    awk -v want="$2" '
        /^[ \t]*\[/ { sub(/^[ \t]*\[/, ""); sub(/\].*/, ""); section = $0; next }
        section == want {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (line ~ /^[;#]/ || line !~ /[=:]/) next
            sub(/[ \t]*[=:].*/, "", line)
            if (line != "") print line
        }' "$1" 2>/dev/null
}

# The argument names of the config's plugin: the config's own [args] keys,
# and the [args] block `weft describe` prints (a plugin beside the config
# is described by its path, as the config would find it first).
_weft_arg_names()
{
    local config=$1 plugin dir exe
    [[ -f $config ]] || return
    _weft_ini_keys "$config" args
    plugin=$(_weft_ini_value "$config" run plugin)
    [[ -n $plugin ]] || return
    dir=$(dirname -- "$config")
    if [[ $plugin == */* ]]; then
        [[ $plugin == /* ]] || plugin=$dir/$plugin
    elif [[ -f $dir/$plugin.so ]]; then
        plugin=$dir/$plugin.so
    fi
    exe=$(_weft_exe)
    "$exe" describe "$plugin" 2>/dev/null |
        awk '/^\[args\]$/ { on = 1; next } on && /^[a-z_][a-z0-9_]* =/ { print $1 }'
}

# Completes the value of --set: section.key=, then values where they are few.
_weft_set_value()
{
    local cur=$1 config=$2 key
    case $cur in
    run.format=*) _weft_reply "$cur" run.format={json,jsonl,csv,tsv,npy,raw,none} ;;
    run.sync=*) _weft_reply "$cur" run.sync={batch,item,none} ;;
    run.npy_dtype=*) _weft_reply "$cur" run.npy_dtype={float64,float32,int64,int32,int16,int8} ;;
    run.record=*) _weft_reply "$cur" run.record={value,full} ;;
    run.order=*) _weft_reply "$cur" run.order={input,any} ;;
    run.isolate=*) _weft_reply "$cur" run.isolate={thread,process} ;;
    run.flatten=*) _weft_reply "$cur" run.flatten={true,false} ;;
    run.journal=*) _weft_reply "$cur" run.journal={auto,off} ;;
    run.halt=*)
        _weft_reply "$cur" run.halt=never run.halt=soon,fail= run.halt=now,fail=
        compopt -o nospace 2>/dev/null
        ;;
    run.output=*) _weft_reply "$cur" run.output={-,none} ;;
    run.items=*:*) ;;
    run.items=*)
        _weft_reply "$cur" run.items={lines:,files:,json:,stdin}
        compopt -o nospace 2>/dev/null
        ;;
    *=*) COMPREPLY=() ;;
    *)
        local keys=() k
        for k in $_weft_run_keys; do
            keys+=("run.$k=")
        done
        for k in $(_weft_arg_names "$config" | LC_ALL=C sort -u); do
            keys+=("args.$k=")
        done
        # [task]: free-form (the worker plugin's task arguments): the config's own.
        for k in $(_weft_ini_keys "$config" task | LC_ALL=C sort -u); do
            keys+=("task.$k=")
        done
        _weft_reply "$cur" "${keys[*]}"
        compopt -o nospace 2>/dev/null
        ;;
    esac
}

_weft()
{
    COMPREPLY=()
    _weft_reassemble
    local cur=${_weft_words[_weft_cword]} prev=
    ((_weft_cword > 0)) && prev=${_weft_words[_weft_cword - 1]}
    local cmd=${_weft_words[1]}

    if ((_weft_cword == 1)); then
        _weft_reply "$cur" run check describe plugins log --help --version
        return
    fi

    case $cmd in
    run | check)
        local opts="--set --threads --output --plugin --items --help"
        [[ $cmd == check ]] && opts+=" --init"
        [[ $cmd == run ]] &&
            opts+=" --quiet --progress --progress= --summary-json --resume --resume=auto --retry-failed --force --restart"
        case $prev in
        --set)
            _weft_set_value "$cur" "$(_weft_config_arg)"
            return
            ;;
        -o | --output | --summary-json)
            _weft_files "$cur"
            return
            ;;
        -p | --plugin)
            _weft_reply "$cur" "$(_weft_plugin_names)"
            return
            ;;
        -j | --threads | --items) return ;;
        esac
        case $cur in
        --set=*)
            local v=${cur#--set=}
            _weft_set_value "$v" "$(_weft_config_arg)"
            ;;
        --progress=*) _weft_reply "$cur" --progress={line,json,off} ;;
        --output=* | --summary-json=*)
            _weft_files "${cur#*=}"
            ;;
        -*)
            _weft_reply "$cur" "$opts"
            _weft_nospace_after_eq
            ;;
        *)
            # First the config (none with -p), then options.
            local w plugin=
            for w in "${_weft_words[@]:2:_weft_cword-2}"; do
                [[ $w == -p || $w == --plugin || $w == --plugin=* || $w == -p?* ]] && plugin=1
            done
            if [[ -z $plugin && -z $(_weft_config_arg) ]]; then
                _weft_files "$cur" '*.ini'
            elif [[ -z $cur ]]; then
                _weft_reply "$cur" "$opts"
            fi
            ;;
        esac
        ;;
    describe)
        [[ $cur == -* ]] && { _weft_reply "$cur" --help; return; }
        ((_weft_cword == 2)) || return
        if [[ $cur == */* ]]; then
            _weft_files "$cur" '*.so'
        else
            _weft_reply "$cur" "$(_weft_plugin_names)"
        fi
        ;;
    plugins)
        _weft_reply "$cur" --names --help
        ;;
    log)
        # A journal (any name) or a config, then options.
        local opts="--json --failed --null --set --help"
        if [[ $prev == --set ]]; then
            _weft_set_value "$cur" "$(_weft_config_arg)"
        elif [[ $cur == --set=* ]]; then
            _weft_set_value "${cur#--set=}" "$(_weft_config_arg)"
        elif [[ $cur == -* ]]; then
            _weft_reply "$cur" "$opts"
        elif [[ -z $(_weft_config_arg) ]]; then
            _weft_files "$cur"
        elif [[ -z $cur ]]; then
            _weft_reply "$cur" "$opts"
        fi
        ;;
    esac
}

complete -F _weft weft
