"""Tokenizer goldens: `minibloom golden tokenize` writes the built-in corpus of hard cases, and
`golden compare` names the first record and token where an independent port (tests/token_port.py,
not minibloom's tokenizer) parts from it, for each classic tokenizer-porting bug."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from minibloom.golden import tokens as golden_tokens
from minibloom.embedded import EMBEDDED_CHECKPOINT
from minibloom.errors import CheckpointError
from minibloom.tokenizer import BloomTokenizer
from tests.token_port import TokenPort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_JSON = os.path.join(EMBEDDED_CHECKPOINT, "tokenizer.json")


@pytest.fixture(scope="module")
def golden_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tok") / "golden.jsonl")
    golden_tokens.dump_tokens(BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT), path)
    return path


@pytest.fixture(scope="module")
def records(golden_path):
    return golden_tokens.read_records(golden_path, golden=True)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "minibloom", "golden", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def port_file(tmp_path, records, bugs=()):
    return write(tmp_path / "port.jsonl", TokenPort(TOKENIZER_JSON, bugs).records(records))


def test_the_corpus_holds_every_hard_case(records):
    names = [r["name"] for r in records]
    texts = "".join(r["text"] for r in records)
    for c in golden_tokens.SEPARATOR_CHARS:
        assert f"split: {c!r}" in names
    for c in golden_tokens.WHITESPACE.values():
        assert c + c in texts  # a run of each white space character
    for special in golden_tokens.SPECIALS:
        assert special in [r["text"] for r in records]  # alone, and in text
    for piece in ("\u200d", "🇫🇷", "\u0301", "你好", "नमस्ते", "،", "\ufffd", "\x1c", "a" * 300):
        assert piece in texts, piece
    assert len(names) == len(set(names))
    for r in records:  # one offset pair per id, each inside the text
        assert len(r["offsets"]) == len(r["ids"]) == len(r["tokens"])
        assert all(0 <= s <= e <= len(r["text"]) for s, e in r["offsets"])


def test_an_independent_correct_port_passes(golden_path, records, tmp_path):
    done = cli("compare", golden_path, port_file(tmp_path, records))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"PASS: {len(records)} records equal" in done.stdout


def first_divergence(done):
    assert done.returncode == 1, done.stdout + done.stderr
    return next(line for line in done.stdout.splitlines() if line.startswith("FAIL: first divergence"))


def test_a_wrong_split_class_is_named_at_its_record_and_token(golden_path, records, tmp_path):
    """'(' ')' '|' read as word characters: the first '(' record, at the token whose boundary the
    '(' moves (the gap '.\\n (' becomes '.\\n' + ' (x' in the port: '.\\n ' is no longer one token)."""
    report = golden_tokens.compare_tokens(records, TokenPort(TOKENIZER_JSON, ["split_class"]).records(records))
    first = report.first_divergence
    assert first.name == "split: '('" and first.what == ["ids", "offsets"]
    r = records[first.index]
    start, end = r["offsets"][first.token]
    assert "(" in r["text"][start:end + 1]  # the token holds, or ends right before, a '('
    failing = {row.name for row in report.rows if not row.ok}
    assert {"split: '('", "split: ')'", "split: '|'"} <= failing
    assert all(set("()|") & set(records[row.index]["text"]) for row in report.rows if not row.ok)
    line = first_divergence(cli("compare", golden_path, port_file(tmp_path, records, ["split_class"])))
    assert f"first divergence at record {first.index} (split: '('" in line
    assert f"token {first.token}: ids and offsets differ" in line


def test_a_wrong_merge_order_is_named_at_its_record_and_token(golden_path, records, tmp_path):
    """Leftmost pair first instead of the lowest rank: 'Hello' -> 'He' 'll' 'o', not 'H' 'ell' 'o'."""
    port = TokenPort(TOKENIZER_JSON, ["merge_order"]).records(records)
    report = golden_tokens.compare_tokens(records, port)
    first = report.first_divergence
    assert (first.index, first.token, first.what) == (0, 0, ["ids", "offsets"])
    assert records[0]["tokens"][:3] == ["H", "ell", "o"] and port[0]["tokens"][:3] == ["He", "ll", "o"]
    assert port[0]["decoded"] == records[0]["decoded"]  # the same bytes, cut elsewhere
    done = cli("compare", golden_path, port_file(tmp_path, records, ["merge_order"]))
    assert "first divergence at record 0 (plain, text 'Hello world'), token 0: ids and offsets differ" \
        in first_divergence(done)
    assert "> token 0: 43 'H' [0, 1] 'H'" in done.stdout and "> token 0: 552 'He' [0, 2] 'He'" in done.stdout


def test_dropped_special_token_offsets_are_named_at_the_special_token(golden_path, records, tmp_path):
    report = golden_tokens.compare_tokens(records, TokenPort(TOKENIZER_JSON, ["special_offsets"]).records(records))
    first = report.first_divergence
    r = records[first.index]
    assert first.what == ["offsets"]  # the ids are right
    assert r["text"] == golden_tokens.SPECIALS[0] and first.token == 0
    assert all(r.ok == (not any(s in r_text for s in golden_tokens.SPECIALS))
               for r, r_text in ((row, records[row.index]["text"]) for row in report.rows))
    line = first_divergence(cli("compare", golden_path, port_file(tmp_path, records, ["special_offsets"])))
    assert f"record {first.index} (special: <unk> alone, text '<unk>'), token 0: offsets differ" in line


def test_a_record_in_the_middle_is_found_and_the_decoded_text_checked(records):
    port = TokenPort(TOKENIZER_JSON).records(records)
    i = next(k for k, r in enumerate(records) if r["name"] == "emoji: ZWJ family")
    port[i]["decoded"] = port[i]["decoded"].replace("\u200d", "")  # a decoder that drops the ZWJ
    report = golden_tokens.compare_tokens(records, port)
    first = report.first_divergence
    assert (first.index, first.what, first.token) == (i, ["decoded"], None)
    assert first.char == records[i]["text"].index("\u200d")


def test_fail_closed(records, golden_path, tmp_path):
    port = TokenPort(TOKENIZER_JSON).records(records)
    short = golden_tokens.compare_tokens(records, port[:-1])  # a text left out: fails, though all agree
    assert not short.ok and "the port holds" in short.problems[0]
    other = [dict(r) for r in port]
    other[2]["text"] += " "
    assert golden_tokens.compare_tokens(records, other).first_divergence.what == ["text"]
    bare = [{"text": r["text"], "ids": r["ids"]} for r in port]  # no offsets, no decoded
    assert not golden_tokens.compare_tokens(records, bare).ok
    lenient = golden_tokens.compare_tokens(records, bare, skip_missing=True)
    assert lenient.ok
    assert "not recorded by the port: decoded, offsets" in golden_tokens.format_token_report(lenient)
    wrong = [dict(r, ids=r["ids"][:-1] + [r["ids"][-1] + 1] if r["ids"] else []) for r in bare]
    assert not golden_tokens.compare_tokens(records, wrong, skip_missing=True).ok


@pytest.mark.parametrize("body, message", [
    (b"", "holds no record"),
    (b"not json\n", "line 1 is not valid JSON"),
    (b"[1, 2]\n", "line 1: a record is a JSON object"),
    (b'{"text": "a", "ids": [1.5]}\n', "line 1: \"ids\" must be ints"),
    (b'{"text": "a", "ids": [true]}\n', "line 1: \"ids\" must be ints"),
    (b'{"text": "a", "ids": [-1]}\n', "line 1: \"ids\" must be ints"),
    (b'\n{"text": "a", "ids": [1], "offsets": [[0]]}\n', "line 2: \"offsets\" must be a list of [start, end]"),
    (b'{"text": "a", "ids": [1], "decoded": 3}\n', "\"decoded\" must be a string"),
    (b'{"text": "\\ud800", "ids": []}\n', "lone surrogate"),
])
def test_unusable_port_files_are_refused_naming_the_line(tmp_path, body, message):
    path = tmp_path / "port.jsonl"
    path.write_bytes(body)
    with pytest.raises(CheckpointError, match=message.replace("[", r"\[").replace("]", r"\]")):
        golden_tokens.read_records(path)


def test_a_golden_record_needs_its_offsets(tmp_path):
    path = write(tmp_path / "g.jsonl", [{"text": "ab", "ids": [1, 2], "offsets": [[0, 1]], "decoded": "ab"}])
    with pytest.raises(CheckpointError, match="1 offsets for 2 ids"):
        golden_tokens.read_records(path, golden=True)


def test_cli_tokenize_texts_and_usage_errors(tmp_path):
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(["one\ntwo", "ROMEO. <s>"]), encoding="utf-8")
    out = tmp_path / "mine.jsonl"
    done = cli("tokenize", "--texts", texts, "--no-builtin", "-o", out)
    assert done.returncode == 0, done.stderr
    rows = golden_tokens.read_records(out, golden=True)
    assert [r["text"] for r in rows] == ["one\ntwo", "ROMEO. <s>"] and rows[1]["ids"][-1] == 1
    assert cli("compare", out, out).returncode == 0
    for args, message in [(("compare", out, out, "--atol", "1"), "--atol applies to tensor goldens"),
                          (("compare", out, tmp_path / "x.safetensors"), "both files *.jsonl"),
                          (("tokenize", "-o", tmp_path / "t.json"), "is named *.jsonl"),
                          (("tokenize", "--texts", tmp_path / "none.txt", "-o", out), "--texts")]:
        done = cli(*args)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
