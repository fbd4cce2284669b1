# SPDX-License-Identifier: MIT
# A weft worker in awk: the protocol (docs/worker-protocol.md) is only lines
# on standard input and output, so any language that reads and prints lines
# can be a worker.  It answers hello with `ready`, then each item with its
# text upper-cased: item {"index":0,"number":0,"seed":1,"text":"hi"} -> ok "HI".
#
# Correct for plain ASCII text only: it finds "text" with a regular
# expression rather than a JSON parser, so it fails an item whose text holds
# a JSON escape (a quote, a backslash, a control character, \udcXX), and
# toupper() leaves non-ASCII letters as they are.  A range item has no
# text: its value is null.  Every reply ends with fflush(), since weft sends
# the next item only after the reply to the last one.

/^hello / {
    # A real worker would check "protocol":1 and its arguments here.
    if ($0 !~ /"protocol":1[,}]/) {
        print "fail upper.awk speaks worker protocol 1 only"
        fflush()
        exit 1
    }
    print "ready"
    fflush()
    next
}

/^item / {
    if (!match($0, /"text":"[^"]*"/)) {
        print "ok null"
    } else {
        text = substr($0, RSTART + 8, RLENGTH - 9)
        if (index(text, "\\"))
            print "fail upper.awk handles plain ASCII text only (no JSON escapes)"
        else
            print "ok \"" toupper(text) "\""
    }
    fflush()
    next
}

{
    # Anything else breaks the protocol: say so on stderr and stop.
    print "upper.awk: unexpected frame: " $0 > "/dev/stderr"
    exit 2
}
