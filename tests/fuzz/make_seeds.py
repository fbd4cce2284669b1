#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the hand-made seeds of tests/fuzz/corpus/{config,source,template}.

Run from anywhere: python3 tests/fuzz/make_seeds.py.  It rewrites only the
files it names (seeds found by fuzzing and reproducers stay).  The journal
seeds come from the real writer:
    meson compile -C build fuzz_gen_journal
    build/tests/fuzz/fuzz_gen_journal tests/fuzz/corpus/journal
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- config: INI text, optionally ";--set" and one override per line ----

def configs():
    os.makedirs(os.path.join(CORPUS, "config"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
        if name.endswith(".ini"):
            shutil.copy(os.path.join(ROOT, "configs", name),
                        os.path.join(CORPUS, "config", "shipped_" + name))
    ok = ("[run]\nplugin = fuzzplug\nitems = 0..100\noutput = out.json\n"
          "[args]\nbig = 5\nn = 7\nratio = 0.25\nx = -1e300\nflag = yes\n"
          "name = hello world\nfile = data/in.bin\n")
    seeds = {
        "all_args": ok,
        "all_run_keys": (
            "[run]\nplugin = ./plugins/p.so\nplugin_path = a:/b::c\nitems = lines:x.txt\n"
            "threads = 1024\noutput = results.jsonl\nformat = jsonl\nrecord = full\n"
            "flatten = on\nseed = 0xFFFFFFFFFFFFFFFF\norder = any\n"
            "halt = soon,fail=10%\nretries = 1000\ntimeout = 0.5\nisolate = process\n"
            "journal = run.journal\n[args]\nbig = 0x7FFFFFFFFFFFFFFF\n"),
        "halt_now_count": "[run]\nplugin=p\nitems=1\nhalt=now,fail=3\njournal=off\n"
                          "[args]\nbig=-9223372036854775808\n",
        "halt_bad": "[run]\nplugin=p\nitems=1\nhalt=soon,fail=0%\n",
        "timeout_nan": "[run]\nplugin=p\nitems=1\ntimeout=nan\n",
        "huge_numbers": ("[run]\nplugin = p\nitems = 99999999999999999999\n"
                         "threads = 99999999999999999999\nseed = 0x1FFFFFFFFFFFFFFFF\n"
                         "[args]\nbig = 9223372036854775808\nn = 1e3\nx = 1e309\n"),
        "int_edges": "[args]\nbig = -0x8000000000000000\nn = +0\nx = 0x1p3\n",
        "duplicate_key": "[run]\nplugin = a\nplugin = b\nitems = 1\n",
        "duplicate_section": "[run]\nplugin = a\n[args]\nbig=1\n[run]\nitems = 1\n",
        "long_line": "[run]\nplugin = " + "p" * 250 + "\nitems = 1\n",
        "line_197": "[run]\nplugin = " + "p" * (197 - 9) + "\nitems = 1\n",
        "line_198": "[run]\nplugin = " + "p" * (198 - 9) + "\nitems = 1\n",
        "bad_utf8": b"[run]\nplugin = \xff\xfe\xc3(\nitems = \xed\xa0\x80\n[args]\n\xc0\xaf = 1\n",
        "bom_crlf": b"\xef\xbb\xbf[run]\r\nplugin = p\r\nitems = 3\r\n",
        "nul_byte": b"[run]\nplugin = p\x00x\nitems = 1\n",
        "unknown_section": "[rnu]\nplugin = p\n",
        "unknown_section_far": "[zzzzzzzzzzzzzzzzzzz]\n",
        "unclosed_section": "[run\nplugin = p\n",
        "text_after_section": "[run] x\nplugin = p\n",
        "key_outside": "plugin = p\n[run]\nitems = 1\n",
        "empty_key": "[run]\n = value\n",
        "no_equals": "[run]\njust some words\n",
        "colon_syntax": "[run]\nplugin: p\nitems: 1..2\n",
        "inline_comments": "[run]\nplugin = p ; comment\nitems = 5 # not a comment\n"
                           "output = -;x\n",
        "indented": "[run]\nplugin = p\n    items = 4\n\toutput = -\n",
        "unknown_run_key": "[run]\nplugn = p\nitems = 1\n",
        "unknown_arg": "[run]\nplugin = p\nitems = 1\n[args]\nbgi = 1\n",
        "format_npy_stdout": "[run]\nplugin = p\nitems = 1\noutput = -\nformat = npy\n",
        "format_without_output": "[run]\nplugin = p\nitems = 1\nformat = json\n",
        "output_none_format": "[run]\nplugin = p\nitems = 1\noutput = none\nformat = none\n",
        "range_checks": "[run]\nplugin=p\nitems=1\n[args]\nbig=1\nn=1001\nratio=1.5\n",
        "bools": "[run]\nplugin=p\nitems=1\nflatten=OFF\n[args]\nbig=1\nflag=maybe\n",
        "empty_values": "[run]\nplugin =\nitems =\noutput =\n",
        "empty": "",
        "only_comments": "; nothing\n# here\n\n",
        "no_final_newline": "[run]\nplugin = p\nitems = 1",
        "with_sets": ok + ";--set\nrun.threads=4\nargs.n = 5\n  args . big  =  0x10  \n"
                          "run.items=json:data.json\nargs.new=1\n",
        "bad_sets": ok + ";--set\nbogus\nx.y=z\nrun.=3\n.k=v\nrun.threads\nargs.n=\n"
                         "run.output=a=b.c\n",
        "set_missing_keys": "[run]\n;--set\nrun.plugin=p\nrun.items=10\nargs.big=1\n",
        "csv_columns": "[run]\nplugin=p\nitems=1\noutput=r.csv.gz\ncolumns= a , b,c\n"
                       ";--set\nrun.columns=x,,y\nrun.output=r.tsv.zst\nrun.record=value\n",
        "format_mismatch": "[run]\nplugin=p\nitems=1\noutput=r.jsonl.zst\nformat=csv\n"
                           ";--set\nrun.output=r.npy.gz\nrun.format=npy\nrun.output=x.txt\n",
    }
    for name, text in seeds.items():
        put("config", name, text)


# ---- source: the spec line, then the content of "input" ------------------

def sources():
    seeds = {
        "lines_plain": "lines:input\nalpha\nbeta\ngamma\n",
        "lines_crlf": "lines:input\r\none\r\ntwo\r\n\r\nthree\r",
        "lines_lone_cr": "lines:input\na\rb\r",
        "lines_no_final_newline": "lines:input\nx\ny",
        "lines_empty_lines": "lines:  input\n\n\n\n",
        "lines_nul": b"lines:input\na\x00b\n\x00\n",
        "lines_empty_file": "lines:input\n",
        "lines_long": "lines:input\n" + "x" * 5000 + "\nshort\n",
        "lines_fixed": "lines:lines.txt\n",
        "lines_dotslash": "lines:./input\nq\n",
        "lines_folder": "lines:tree\n",
        "lines_missing": "lines:missing.txt\n",
        "lines_no_file": "lines:\n",
        "lines_symlink": "lines:tree/link\n",
        "json_mixed": 'json:input\n[1, "two", {"three": [3, 4.5e10]}, null, true, false, -0]\n',
        "json_strings": r'json:input' + '\n' +
                        r'["a\"b", "\u00e9\ud83d\ude00", "nul\u0000cut", "\\", "", "\/"]',
        "json_numbers": "json:input\n[1.000000000000000000001, 1e400, -1E-400, 12345678901234567890]",
        "json_whitespace": 'json:input\n \t[ { "k" : "v w" ,\n "a" : [ 1 , 2 ] } ,\r\n[ ] ] \n',
        "json_nested": "json:input\n" + "[" * 50 + "]" * 50,
        "json_empty_array": "json:input\n[]",
        "json_object": 'json:input\n{"a": 1}',
        "json_invalid": "json:input\n[1, 2,",
        "json_trailing": "json:input\n[1] x",
        "json_nul": b"json:input\n[1,\x002]",
        "json_bad_utf8": b'json:input\n["\xff\xfe", "\xc3"]',
        "json_fixed": "json:array.json\n",
        "files_dir": "files:tree\n",
        "files_dir_slash": "files:tree/\n",
        "files_star": "files:tree/*\n",
        "files_txt": "files:tree/*.txt\n",
        "files_deep": "files:*/*\n",
        "files_here": "files:.\n",
        "files_sub": "files:tree/sub\n",
        "files_dirlink": "files:tree/dirlink\n",
        "files_glob_chars": "files:tree/[x] y/*\n",
        "files_class": "files:tree/[ab]*\n",
        "files_question": "files:tree/?.txt\n",
        "files_nothing": "files:nothing*\n",
        "files_not_dir": "files:input\n",
        "files_empty": "files:\n",
        "files_globstar": "files:tree/**/*.txt\n",
        "files_globstar_all": "files:**\n",
        "files_globstar_two": "files:tree/**/sub/**/*.txt\n",
        "files_globstar_loop": "files:tree/loop/**\n",
        "files_globstar_head": "files:tree/*/**/f.txt\n",
        "files_globstar_dot": "files:**/.hidden\n",
        "files_globstar_none": "files:tree/**/*.none\n",
        "files_globstar_missing": "files:nothing/**/x\n",
        "files_globstar_slashes": "files:tree//**//d.txt\n",
        "range_count": "10\n",
        "range_ab": "10..20\n",
        "range_negative": "-5..5\n",
        "range_hex": "0x10..0x20\n",
        "range_no_begin": "..5\n",
        "range_no_end": "5..\n",
        "range_max": "9223372036854775807\n",
        "range_min_max": "-9223372036854775808..9223372036854775806\n",
        "range_zero": "0\n",
        "range_empty": "5..5\n",
        "range_backwards": "20..10\n",
        "range_three": "1..2..3\n",
        "range_plus": "+5\n",
        "range_bare_hex": "0x\n",
        "range_overflow": "99999999999999999999\n",
        "unknown_kind": "line:input\n",
        "unknown_word": "abc\n",
        "unknown_json": "jsn:input\n",
    }
    for name, text in seeds.items():
        put("source", name, text)


# ---- template: the template line, then flags, index, number, text -------

def item(text=None, index=0, number=None):
    flags = 0
    if text is None:
        flags |= 1
    if number is None:
        flags |= 2
        number = index
    out = struct.pack("<BQQ", flags, index, number & (2**64 - 1))
    if text is not None:
        out += text.encode() if isinstance(text, str) else text
    return out


def templates():
    seeds = {
        "noise_png": ("noise_{index:06}.png", item(None, 7)),
        "stem_ext": ("{stem}.out{ext}", item("data/archive.tar.gz", 3)),
        "dir_name": ("{dir}/{name}", item("a/b/c.txt", 1)),
        "text": ("out/{}", item("hello world", 0)),
        "range_number": ("n{}_{number:05}", item(None, 5, -42)),
        "braces": ("{{literal}}_{index}", item(None, 1)),
        "dotdot_item": ("out/{}", item("../../etc/passwd", 2)),
        "dotdot_template": ("../{index}", item(None, 0)),
        "absolute": ("/abs/{}", item("x", 0)),
        "absolute_item": ("{}", item("/etc/shadow", 0)),
        "dotfile": ("{stem}{ext}", item(".bashrc", 0)),
        "dots": ("{name}/{stem}", item("..", 0)),
        "slash_item": ("x/{dir}/{name}", item("/", 0)),
        "empty_item": ("{}", item("", 0)),
        "trailing_slash": ("{}", item("dir/", 0)),
        "double_slash": ("a//b/{name}", item("q", 0)),
        "nul_item": ("{}.txt", item(b"a\x00b", 0)),
        "pad_max": ("{index:020}", item(None, 2**64 - 1)),
        "pad_too_big": ("{index:021}", item(None, 1)),
        "pad_zero": ("{index:0}", item(None, 1)),
        "pad_number_min": ("{number:020}", item(None, 0, -2**63)),
        "unknown": ("x{foo}y", item(None, 0)),
        "lone_open": ("a{b", item(None, 0)),
        "lone_close": ("a}b", item(None, 0)),
        "empty": ("", item("x", 0)),
        "long_component": ("{}", item("n" * 300, 0)),
        "long_path": ("{}/{}/{}/{}/{}/{}/{}/{}/{}", item("d" * 250, 0)),
        "dot": (".", item(None, 0)),
        "dotslash": ("./{index}", item(None, 9)),
        "gnu_aliases": ("{//}/{/.}-{#:03}{ext}|{.}|{/}", item("a.b/c.tar.gz", 4)),
        "gnu_trailing": ("{.}_{/}_{//}", item("d/x.y//", 0)),
        "gnu_seq_max": ("{#}", item(None, 2**64 - 1)),
        "gnu_slot": ("x{%}", item(None, 0)),
        "word_braces": ("{{{/.}}}", item("a/b.c", 0)),
        "near_miss": ("{nmae}", item("x", 0)),
    }
    for name, (tmpl, it) in seeds.items():
        put("template", name, tmpl.encode() + b"\n" + it)


if __name__ == "__main__":
    configs()
    sources()
    templates()
