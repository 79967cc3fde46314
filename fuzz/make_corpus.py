#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/ (small valid and broken inputs for each parser).
Run from the repository root: python3 fuzz/make_corpus.py. The files are committed; libFuzzer adds
what it finds to its own working corpus (.build-fuzz/corpus), not here."""
import json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))

# json: one document each.
for name, text in {
    "object": '{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
    "numbers": '[0, -0, 1.5, -2e-3, 1E+22, 1e23, 9007199254740993, 1e400, 4.9e-324, 123456789012345678901234567890]',
    "strings": r'["", "a\"b\\c\/d", "\n\t\r\b\f", "\u00e9\u4e2d", "\ud83d\ude00", "caf\u00c3"]',
    "nested": "[" * 40 + "]" * 40,
    "dupkeys": '{"a": 1, "a": 2}',
    "bad_trailing": '{"a": 1,}',
    "bad_surrogate": r'["\ud800x"]',
    "bad_leading_zero": '[01]',
    "bad_nan": '[NaN, Infinity]',
    "bad_unterminated": '{"a": "b',
    "bad_control": '["a\x01b"]',
}.items():
    put("json", name + ".json", text)

# jsonl: score tables, confidence shards, pseudo-labels, id lists (each read by every JSONL reader).
put("jsonl", "scores.jsonl",
    '{"idx": 1, "human_scores": [1, 0], "prompt": "a \\"red\\" cat", "a_score": [2, 1], "b_score": [3, 1]}\n'
    '{"idx": 2, "label_0": 0.0, "a_score": [1, 2], "b_score": [1, 3]}\n'
    '\n'
    '{"idx": 3, "winner_idx": 0, "a_score": [2, 1], "b_score": [3, 1e-3]}\n')
put("jsonl", "scores_bad_line.jsonl",
    '{"idx": 1, "a_score": [2, 1], "b_score": [3, 1]}\n{"idx": 2, "a_score": [2], "b_score": [3, 1]}\n')
put("jsonl", "confidence.jsonl",
    '{"idx": 100, "timestep_50": 0.25, "timestep_150": -1.5}\n{"idx": 101, "timestep_50": 0.5, "timestep_150": 2}\n')
put("jsonl", "confidence_unknown_anchor.jsonl",
    '{"idx": 100, "timestep_50": 0.25}\n{"idx": 101, "timestep_51": 0.5}\n')
put("jsonl", "pseudo_labels.json",
    '{"12": {"timestep_50": 1, "timestep_150": -1}, "4": {"timestep_50": 0}}')
put("jsonl", "ids.json", '[1, 2, "3", 9007199254740993, -4]')
put("jsonl", "ids_bad.json", '[1, 2.5, "x"]')
put("jsonl", "blank.jsonl", "\n\n  \n")
put("jsonl", "huge_idx.jsonl", '{"idx": 99999999999999999999, "a_score": [1, 2], "b_score": [2, 1]}\n')

# yaml: configs as recipes write them, and the constructs the loader limits.
for name, text in {
    "config": "name: semi-dpo\nsteps: 100\nlr: 1.0e-4\nguard:\n  floor: 0.65\n  raise_to: 0.8\nlist: [1, two, 3.0, yes, ~]\n",
    "anchors": "defaults: &d {beta: 2500, steps: 10}\nrun:\n  <<: *d\n  steps: 20\nboth: [*d, *d]\n",
    "merge_list": "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n",
    "scalars": "int: 0x1F\noct: 017\nneg: -7\nf: .inf\nn: .nan\nq: \"42\"\nt: !!str 12\ni: !!int '5'\nb: !!bool yes\nblock: |\n  two\n  lines\nfold: >\n  one\n  line\n",
    "tags_unknown": "a: !!python/object:__main__.X {b: 1}\n",
    "tag_seq": "!!python/tuple [1, 2]\n",
    "dup": "a: 1\na: 2\n",
    "laughs": "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\n",
    "deep": "[" * 30 + "]" * 30 + "\n",
    "multidoc": "---\na: 1\n---\nb: 2\n",
    "unicode": "text: \"\\u00e9 \\x85 \\u2028 \\ufeff\"\nkey with spaces: '<<'\n\"<<\": 1\n",
    "bad_indent": "a: 1\n  b: 2\n",
    "bad_alias": "a: *nope\n",
}.items():
    put("yaml", name + ".yaml", text)
put("yaml", "bad_utf8.yaml", b"a: \xff\xfe\n")

# safetensors: the Python fixture's layout, and headers that the reader must refuse.
def st(header, data=b"", raw_len=None):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if raw_len is None else raw_len) + h + data

floats = struct.pack("<11f", 1e-3, -2.5, 3.25, 7, 42, -1, -0.5, 0, 0.5, 1, 1.5)
good = {"__metadata__": {"made_by": "python"},
        "bias": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "scalar": {"dtype": "F32", "shape": [], "data_offsets": [16, 20]},
        "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [20, 44]}}
put("safetensors", "good.safetensors", st(good, floats))
put("safetensors", "empty_header.safetensors", st({}))
put("safetensors", "zero_dim.safetensors", st({"z": {"dtype": "F32", "shape": [0, 5], "data_offsets": [0, 0]}}))
put("safetensors", "truncated.safetensors", st(good, floats[:20]))
put("safetensors", "overlap.safetensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, floats[:12]))
put("safetensors", "bad_dtype.safetensors", st({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4))
put("safetensors", "bool_shape.safetensors", st({"a": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, floats[:8]))
put("safetensors", "float_shape.safetensors", st({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, floats[:8]))
put("safetensors", "huge_shape.safetensors", st({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}, floats[:8]))
put("safetensors", "header_past_end.safetensors", st({}, raw_len=1 << 40))
put("safetensors", "short.safetensors", b"\x08\x00\x00")
put("jsonl", "bad_syntax.jsonl", '{"idx": 1,, "a_score": [1, 2]}\n')
put("safetensors", "empty_file.safetensors", b"")
