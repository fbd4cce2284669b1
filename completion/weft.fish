# SPDX-License-Identifier: MIT
# fish completion for weft(1).  Installed as
# <datadir>/fish/vendor_completions.d/weft.fish, which fish loads the first
# time weft is completed; or copy it to ~/.config/fish/completions/.  What
# it offers is what completion/weft.bash offers (the tests check both,
# tests/test_completion.sh and tests/test_completion_fish.sh).

# The [run] keys (core/input/config.c's run_keys; tests/test_docs.sh checks
# that this list and the man page agree with it).
function __weft_run_keys
    printf '%s\n' plugin plugin_path items output format npy_dtype record flatten columns threads seed order isolate timeout retries halt journal keep_journal sync
end

# The weft being completed: the command as typed, if it runs, else weft.
function __weft_exe
    set -l exe (commandline -opc)[1]
    string match -q -- '~/*' $exe; and set exe $HOME/(string sub -s 3 -- $exe)
    command -q -- $exe; or test -x "$exe"; or set exe weft
    printf '%s\n' $exe
end

# The CONFIG argument of run/check among the words before the cursor.
function __weft_config_arg
    set -l words (commandline -opc)
    set -l i 3
    while test $i -le (count $words)
        switch $words[$i]
            case --set -j --threads -o --output --summary-json -p --plugin --items
                set i (math $i + 1)
            case '-*'
            case '*'
                printf '%s\n' $words[$i]
                return 0
        end
        set i (math $i + 1)
    end
    return 1
end

# `key = value` of a section of an INI file (the first match), trimmed.
function __weft_ini_value
    awk -v want=$argv[2] -v key=$argv[3] '
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
        }' $argv[1] 2>/dev/null
end

# The argument names of the config's plugin: the config's own [args] keys,
# and the [args] block `weft describe` prints (a plugin beside the config
# is described by its path, as the config would find it first).
# The keys of section $argv[2] in config $argv[1].
function __weft_ini_keys
    awk -v want=$argv[2] '
        /^[ \t]*\[/ { sub(/^[ \t]*\[/, ""); sub(/\].*/, ""); section = $0; next }
        section == want {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (line ~ /^[;#]/ || line !~ /[=:]/) next
            sub(/[ \t]*[=:].*/, "", line)
            if (line != "") print line
        }' $argv[1] 2>/dev/null
end

function __weft_arg_names
    set -l config $argv[1]
    test -f "$config"; or return
    __weft_ini_keys $config args
    set -l plugin (__weft_ini_value $config run plugin)
    test -n "$plugin"; or return
    set -l dir (path dirname -- $config)
    if string match -q -- '*/*' $plugin
        string match -q -- '/*' $plugin; or set plugin $dir/$plugin
    else if test -f $dir/$plugin.so
        set plugin $dir/$plugin.so
    end
    set -l exe (__weft_exe)
    $exe describe $plugin 2>/dev/null |
        awk '/^\[args\]$/ { on = 1; next } on && /^[a-z_][a-z0-9_]* =/ { print $1 }'
end

# The value of --set (the token, without a --set= before it): section.key=,
# then the values where they are few.
function __weft_set_values
    set -l cur (commandline -ct)
    set -l pre ''
    string match -q -- '--set=*' $cur; and set pre '--set='
    set cur (string replace -- '--set=' '' $cur)
    switch $cur
        case 'run.format=*'
            printf "$pre%s\n" run.format={json,jsonl,csv,tsv,npy,raw,none}
        case 'run.sync=*'
            printf "$pre%s\n" run.sync={batch,item,none}
        case 'run.npy_dtype=*'
            printf "$pre%s\n" run.npy_dtype={float64,float32,int64,int32,int16,int8}
        case 'run.record=*'
            printf "$pre%s\n" run.record={value,full}
        case 'run.order=*'
            printf "$pre%s\n" run.order={input,any}
        case 'run.isolate=*'
            printf "$pre%s\n" run.isolate={thread,process}
        case 'run.flatten=*'
            printf "$pre%s\n" run.flatten={true,false}
        case 'run.journal=*'
            printf "$pre%s\n" run.journal={auto,off}
        case 'run.halt=*'
            printf "$pre%s\n" run.halt={never,soon,fail=,now,fail=}
        case 'run.output=*'
            printf "$pre%s\n" run.output={-,none}
        case 'run.items=*:*'
        case 'run.items=*'
            printf "$pre%s\n" run.items={lines:,files:,json:,stdin}
        case '*=*'
        case '*'
            for k in (__weft_run_keys)
                printf "$pre%s\n" run.$k=
            end
            for k in (__weft_arg_names (__weft_config_arg) | sort -u)
                printf "$pre%s\n" args.$k=
            end
            # [task]: free-form (the worker plugin's task arguments): the config's own.
            set -l config (__weft_config_arg)
            if test -f "$config"
                for k in (__weft_ini_keys $config task | sort -u)
                    printf "$pre%s\n" task.$k=
                end
            end
    end
end

# Plugin names on the search path: `weft plugins --names`, or the first
# column of `weft plugins` for a weft without --names.
function __weft_plugins
    set -l exe (__weft_exe)
    set -l names ($exe plugins --names 2>/dev/null)
    or set names ($exe plugins 2>/dev/null | awk '/^[a-z0-9_-]/ { print $1 }')
    printf '%s\n' $names
end

# Files ending in $argv[1] whose names start as the current token does,
# and folders to descend into (as the bash completion offers them).
function __weft_files
    set -l cur (commandline -ct)
    for f in $cur*
        if test -d $f
            printf '%s/\n' $f
        else if string match -q -- "*$argv[1]" $f
            printf '%s\n' $f
        end
    end
end

function __weft_needs_config
    __fish_seen_subcommand_from run check; and not __weft_config_arg >/dev/null
    and not string match -qr -- '^(-p|--plugin)' (commandline -opc)
end

set -l runcheck '__fish_seen_subcommand_from run check'
set -l run '__fish_seen_subcommand_from run'

complete -c weft -f
complete -c weft -n __fish_use_subcommand -a run -d 'run the job a config describes'
complete -c weft -n __fish_use_subcommand -a check -d 'validate a config, run nothing'
complete -c weft -n __fish_use_subcommand -a describe -d "a plugin's arguments"
complete -c weft -n __fish_use_subcommand -a plugins -d 'the plugins on the search path'
complete -c weft -n __fish_use_subcommand -a log -d "each item of a run's journal"
complete -c weft -n __fish_use_subcommand -l help -d 'show the usage'
complete -c weft -n __fish_use_subcommand -l version -d 'show the version'

# run, check: the config first, then options.
complete -c weft -n __weft_needs_config -a '(__weft_files .ini)'
complete -c weft -n $runcheck -l set -x -a '(__weft_set_values)' -d 'override key K of section S'
complete -c weft -n $runcheck -s j -l threads -x -d 'worker threads (0 = one per CPU)'
complete -c weft -n $runcheck -s o -l output -r -F -d 'where results go (- or none)'
complete -c weft -n $runcheck -s p -l plugin -x -a '(__weft_plugins)' -d 'run PLUGIN with no config'
complete -c weft -n $runcheck -l items -x -d 'the items of a -p run'
complete -c weft -n $runcheck -l help -d 'show the usage'
complete -c weft -n $run -s q -l quiet -d 'errors only'
complete -c weft -n $run -l progress -a 'line json off' -d 'live progress on stderr'
complete -c weft -n $run -l summary-json -r -F -d 'the summary as JSON'
complete -c weft -n $run -l resume -d 'run what an earlier run left (--resume=auto: or all)'
complete -c weft -n $run -l retry-failed -d '--resume, and failed items again'
complete -c weft -n $run -l force -d 'resume although the config, plugin or items changed'
complete -c weft -n $run -l restart -d 'discard an unfinished journal'
complete -c weft -n '__fish_seen_subcommand_from check' -l init -d 'also start the plugin, and stop it'

# describe: a plugin name, or a path to one.
complete -c weft -n '__fish_seen_subcommand_from describe' -l help -d 'show the usage'
complete -c weft -n '__fish_seen_subcommand_from describe; and test (count (commandline -opc)) -eq 2' \
    -a '(__weft_plugins)'
complete -c weft -n '__fish_seen_subcommand_from describe; and test (count (commandline -opc)) -eq 2; and string match -q -- "*/*" (commandline -ct)' \
    -a '(__weft_files .so)'

complete -c weft -n '__fish_seen_subcommand_from plugins' -l names -d 'names only, one a line'
complete -c weft -n '__fish_seen_subcommand_from plugins' -l help -d 'show the usage'

# log: a journal (any name) or a config, then options.
set -l log '__fish_seen_subcommand_from log'
complete -c weft -n "$log; and not __weft_config_arg >/dev/null" -a '(__weft_files "")'
complete -c weft -n $log -l json -d 'one JSON object a line'
complete -c weft -n $log -l failed -d 'only the failed inputs, one a line'
complete -c weft -n $log -s 0 -l null -d 'with --failed: NUL-separated inputs'
complete -c weft -n $log -l set -x -a '(__weft_set_values)' -d 'override key K of section S of the config'
complete -c weft -n $log -l help -d 'show the usage'
