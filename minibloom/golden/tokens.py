"""Tokenizer goldens: texts -> ids, offsets and the decoded text, for checking a port of BLOOM's
tokenizer record by record (docs/golden-format.md, "Tokenizer goldens").

A tokenizer port fails in the corners -- a separator its split regex forgets, merges applied in the
wrong order, an emoji sequence cut inside a character, a special-token string matched (or not) --
so the golden is a corpus of such corners, each tokenized by minibloom (checked against HF
tokenizers in tests/reference/test_live_golden_tokens.py), written as JSON Lines:

    {"name": "split: '|'", "text": "a|b", "ids": [...], "offsets": [[0, 1], ...],
     "decoded": "a|b", "tokens": ["a", "|", "b"]}

A port writes the same records with its own `ids`, `offsets` and `decoded` (copying `text`;
`name` and `tokens` are optional, never compared). `compare` walks the records in order and names
the first record and token where the two part, and what differs there: the ids (a split or merge
bug), the offsets (same ids, other spans) or the decoded text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..atomic import atomic_write_bytes
from ..errors import CheckpointError, InputError
from ..safe_read import loads, open_regular

MAX_FILE_BYTES = 256 << 20  # a corpus of a million short texts fits; a hostile size is refused before reading
MAX_ID = 2 ** 63 - 1

SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")
# BLOOM's split class: a run of characters outside these (with an optional leading space) is a word
# piece; each of these separators, white space and the text between matches are pieces of their own
SEPARATOR_CHARS = "()|.,!?…。，、।۔،"
WHITESPACE = {"space": " ", "tab": "\t", "newline": "\n", "carriage return": "\r", "vertical tab": "\v",
              "form feed": "\f", "no-break space": "\u00a0", "next line": "\u0085", "ogham space": "\u1680",
              "en quad": "\u2000", "line separator": "\u2028", "paragraph separator": "\u2029",
              "narrow no-break space": "\u202f", "ideographic space": "\u3000"}


def builtin_corpus() -> list[tuple[str, str]]:
    """(name, text) of the hard cases: every split class of the pre-tokenizer, white space runs,
    combining marks, emoji (ZWJ, flags, skin tones), non-Latin scripts and their punctuation,
    special-token strings and near misses, bytes that look invalid, long runs."""
    cases = [("plain", "Hello world"), ("leading space", " Hello"), ("empty", "")]
    for c in SEPARATOR_CHARS:
        # next to words, spaces, newlines and other separators: a class bug moves a piece boundary,
        # which shows in the ids wherever a merge crosses it (".\n " is one token, ".\n" + " (" two)
        cases += [(f"split: {c!r}", f"a{c}b {c}c{c}{c} d {c} e{c}  f{c}\n{c}{c}  g {c}{c}{c}\n\nh{c} i{c}.j,{c}k "
                                    f"end.\n {c}x,\n  {c}y")]
    for name, c in WHITESPACE.items():
        cases += [(f"white space: {name}", f"a{c}b{c}{c}c {c} d{c}")]
    cases += [
        ("white space: runs", "a  b   c    d\t\te\n\nf \n g\r\n\r\nh     "),
        ("white space: only", "   \n\t  "),
        ("white space: U+001C..U+001F are word characters", "a\x1cb\x1d c\x1e\x1fd"),
        ("white space: U+200B is not white space", "a\u200bb \u200b c"),
        ("newlines: code", "def f(x):\n    return x|1\n\n\nprint(f(2))\n"),
        ("combining marks", "e\u0301te\u0301 cafe\u0301 n\u0303 a\u0300\u0301\u0302\u0303\u0304 Z\u0351\u0352\u0353"),
        ("precomposed vs combining", "\u00e9 e\u0301 \u1e9b\u0323"),
        ("emoji", "I 😀 you 🎉🎉 🫠"),
        ("emoji: ZWJ family", "👨‍👩‍👧‍👦 and 👩‍💻 and 🏳️‍🌈"),
        ("emoji: flags", "🇫🇷🇩🇪 🇯🇵 🏴󠁧󠁢󠁳󠁣󠁴󠁿"),
        ("emoji: skin tones and variation selectors", "👍🏽 👋🏿 ❤️ ☺︎ ✌🏻"),
        ("emoji: keycaps", "1️⃣ #️⃣ *️⃣"),
        ("CJK", "你好，世界。我爱自然语言处理、机器学习！"),
        ("CJK: full-width punctuation", "（全角）「引用」：『二重』？！"),
        ("Japanese", "こんにちは、世界。カタカナとひらがな…"),
        ("Korean", "안녕하세요, 세계! 한국어 텍스트."),
        ("Devanagari", "नमस्ते दुनिया। यह एक वाक्य है॥ क्षत्रिय"),
        ("Arabic", "مرحبا بالعالم، هذا نص عربي؟ نعم۔"),
        ("Urdu", "یہ اردو ہے۔ اور یہ، بھی"),
        ("Hebrew, Thai, Greek, Cyrillic", "שלום עולם ภาษาไทย Καλημέρα Привет, мир!"),
        ("mixed scripts", "abcабвαβγ你好123٤٥٦"),
        ("digits", "3.14159, 2,718 1e-5 0x1F 1000000 ١٢٣"),
        ("ellipsis vs dots", "wait... wait… wait.. .…."),
        ("punctuation runs", "?!?!... ,,, !!! ()()|||"),
        ("brackets and pipes", "f(a|b) (x) [y] {z} <w> |q| ((nested))"),
        ("URL and e-mail", "https://example.com/a?b=c&d=e#f user@example.org"),
        ("contractions", "don't can't I'm we'll they've it's"),
        ("apostrophes and quotes", "’tis “quoted” «guillemets» ‘single’"),
        ("replacement character", "bad \ufffd byte \ufffd\ufffd"),
        ("invalid-looking text", "\\xff\\xfe \\u00e9 %C3%A9 &eacute; \x00nul\x01\x7f\x80\x9f"),
        ("BOM and noncharacters", "\ufeffstart \uffff \U0010ffff \ufffe end"),
        ("private use", "\ue000\uf8ff \U000f0000"),
        ("zero-width joiner alone", "a\u200db \u200c c\u2060d"),
        ("bidi controls", "\u202eevil\u202c \u200fR\u200eL"),
        ("mathematical letters", "𝐀𝐁𝐂 𝔸𝔹ℂ 𝒶𝒷𝒸 ∀x∈ℝ: x²≥0"),
        ("astral CJK", "𠀀𠀁 𪚥 𩸽"),
    ]
    for s in SPECIALS:
        cases += [(f"special: {s} alone", s), (f"special: {s} in text", f"a{s}b {s} c{s}{s}")]
    cases += [
        ("special: near misses", "<s <s > < s> <S> </ s> <unk <pad/> <<s>> </s/>"),
        ("special: all in a row", "".join(SPECIALS)),
        ("special: next to a space", " <s> </s> "),
        ("long: word", "a" * 300),
        ("long: repeated pair", "ab" * 200),
        ("long: digits", "1234567890" * 30),
        ("long: spaces", "x" + " " * 200 + "y"),
        ("long: newlines", "\n" * 100),
        ("long: emoji", "😀" * 64),
        ("long: CJK", "的" * 128),
        ("long: no separators", "Supercalifragilisticexpialidocious-antidisestablishmentarianism_" * 4),
    ]
    return cases


def encode_record(tokenizer, text: str, name: str | None = None) -> dict[str, Any]:
    """One golden record: the ids and character offsets of `text`, its decoded ids and the token strings."""
    ids, offsets = tokenizer.encode_with_offsets(text)
    record = {"name": name} if name is not None else {}
    record.update(text=text, ids=list(map(int, ids)), offsets=[[int(s), int(e)] for s, e in offsets],
                  decoded=tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False),
                  tokens=tokenizer.convert_ids_to_tokens(list(map(int, ids))))
    return record


def read_texts(path: str | os.PathLike) -> list[str]:
    """A --texts file: a JSON list of strings when it ends in .json, else UTF-8 text, one text per line."""
    path = os.fspath(path)
    try:
        with open_regular(path, InputError, MAX_FILE_BYTES) as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except InputError as e:
        raise InputError(f"--texts: {e}") from None
    if path.endswith(".json"):
        texts = loads(raw, f"--texts {path}", InputError)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InputError(f"--texts {path}: a .json texts file is a list of strings")
        return texts
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"--texts {path}: not UTF-8 text ({e})") from None


def dump_tokens(tokenizer, path: str | os.PathLike, texts: list[str] | None = None, builtin: bool = True) -> list[dict]:
    """Write the tokenizer golden (JSON Lines, atomically): the built-in corpus, then `texts`."""
    cases = builtin_corpus() if builtin else []
    cases += [(f"text {i}", t) for i, t in enumerate(texts or [])]
    if not cases:
        raise InputError("a tokenizer golden needs texts: the built-in corpus or --texts")
    records = [encode_record(tokenizer, text, name) for name, text in cases]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_bytes(path, body.encode("utf-8"))
    return records


def is_token_golden(path: str | os.PathLike) -> bool:
    """A tokenizer golden is named *.jsonl (a safetensors file may begin with "{" too)."""
    return os.fspath(path).endswith(".jsonl")


def read_records(path: str | os.PathLike, golden: bool = False) -> list[dict[str, Any]]:
    """The records of a JSON Lines tokenizer golden (blank lines skipped), each checked: `text` a
    string, `ids` a list of ints >= 0, `offsets` a list of [start, end] int pairs, `decoded` a
    string. The golden side must hold all four, with one offset pair per id; a port may leave out
    `offsets` or `decoded` (reported as not recorded). A CheckpointError names the file and line."""
    path = os.fspath(path)
    with open_regular(path, CheckpointError, MAX_FILE_BYTES) as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    records = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{path} line {n}"
        record = loads(line, where, CheckpointError)
        if not isinstance(record, dict):
            raise CheckpointError(f"{where}: a record is a JSON object {{\"text\", \"ids\", \"offsets\", \"decoded\"}}")
        _check_record(record, where, golden)
        records.append(record)
    if not records:
        raise CheckpointError(f"{path}: holds no record (a tokenizer golden is JSON Lines, one object per text)")
    return records


def _check_record(r: dict, where: str, golden: bool) -> None:
    if not isinstance(r.get("text"), str) or not isinstance(r.get("ids"), list):
        raise CheckpointError(f"{where}: a record needs \"text\" (a string) and \"ids\" (a list of ints)")
    if not all(type(i) is int and 0 <= i <= MAX_ID for i in r["ids"]):
        raise CheckpointError(f"{where}: \"ids\" must be ints in [0, 2**63)")
    if golden and not {"offsets", "decoded"} <= set(r):
        raise CheckpointError(f"{where}: a golden record needs \"offsets\" and \"decoded\" too")
    if "offsets" in r:
        offsets = r["offsets"]
        if not isinstance(offsets, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(type(x) is int and 0 <= x <= MAX_ID for x in p)
                for p in offsets):
            raise CheckpointError(f"{where}: \"offsets\" must be a list of [start, end] pairs of ints >= 0")
        if golden and len(offsets) != len(r["ids"]):
            raise CheckpointError(f"{where}: {len(offsets)} offsets for {len(r['ids'])} ids")
    if "decoded" in r and not isinstance(r["decoded"], str):
        raise CheckpointError(f"{where}: \"decoded\" must be a string")
    if "name" in r and not isinstance(r["name"], str):
        raise CheckpointError(f"{where}: \"name\" must be a string")
    if "tokens" in r and not (isinstance(r["tokens"], list) and all(isinstance(t, str) for t in r["tokens"])):
        raise CheckpointError(f"{where}: \"tokens\" must be a list of strings")


@dataclass
class RecordDiff:
    index: int                 # the record's position (0-based)
    name: str
    ok: bool
    what: list[str] = field(default_factory=list)  # "ids", "offsets", "decoded", "text", "not recorded: ..."
    token: int | None = None   # the first token where ids or offsets differ
    char: int | None = None    # the first character where the decoded texts differ
    skipped: list[str] = field(default_factory=list)  # fields the port left out (skip_missing)


@dataclass
class TokenReport:
    """The records in order and what fails besides them (a record count that differs, nothing compared)."""

    rows: list[RecordDiff]
    expected: list[dict]
    actual: list[dict]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def first_divergence(self) -> RecordDiff | None:
        return next((r for r in self.rows if not r.ok), None)

    def to_dict(self) -> dict:
        first = self.first_divergence
        return {"ok": self.ok, "records": len(self.rows), "problems": self.problems,
                "first_divergence": None if first is None else first.__dict__,
                "failing": sum(not r.ok for r in self.rows)}


def compare_tokens(expected: list[dict], actual: list[dict], skip_missing: bool = False) -> TokenReport:
    """Compare a port's records with the golden's, in order. A record passes when its text is the
    golden's and its ids, offsets and decoded text are equal; a field the port left out fails
    unless `skip_missing` (then at least ids are still compared). A port holding more or fewer
    records than the golden fails (each text must be checked)."""
    rows = []
    for i, (e, a) in enumerate(zip(expected, actual)):
        name = e.get("name") or f"record {i}"
        if a["text"] != e["text"]:
            rows.append(RecordDiff(i, name, False, ["text"], char=_first_difference(e["text"], a["text"])))
            continue
        row = RecordDiff(i, name, True)
        token = _first_difference(e["ids"], a["ids"])
        if token is not None:
            row.what.append("ids")
        for key in ("offsets", "decoded"):
            if key not in a:
                (row.skipped if skip_missing else row.what).append(f"not recorded: {key}")
        if "offsets" in a:
            at = _first_difference(e["offsets"], a["offsets"])
            if at is not None and (token is None or at <= token):
                row.what.append("offsets")
                token = at
        if "decoded" in a and a["decoded"] != e["decoded"]:
            row.what.append("decoded")
            row.char = _first_difference(e["decoded"], a["decoded"])
        row.token, row.ok = token, not row.what
        rows.append(row)
    report = TokenReport(rows, expected, actual)
    if len(actual) != len(expected):
        report.problems.append(f"the port holds {len(actual)} records, the golden {len(expected)}: every text "
                               "must be tokenized once, in the golden's order")
    if not rows:
        report.problems.append("nothing compared")
    return report


def _first_difference(e, a) -> int | None:
    """The first index where two sequences differ (one ending counts), None when equal."""
    for i, (x, y) in enumerate(zip(e, a)):
        if x != y:
            return i
    return None if len(e) == len(a) else min(len(e), len(a))


def _vocab(records: list[dict]) -> dict[int, str]:
    """id -> token string from the golden's `tokens` fields (to show a port's ids as tokens)."""
    vocab: dict[int, str] = {}
    for r in records:
        vocab.update(zip(r["ids"], r.get("tokens", [])))
    return vocab


def _window(record: dict, vocab: dict[int, str], token: int, width: int = 3) -> str:
    """The tokens around `token`: id, token string, offsets and the text they cover."""
    ids, offsets, text = record["ids"], record.get("offsets"), record["text"]
    own = dict(zip(ids, record.get("tokens", [])))  # a port's own token strings, when it wrote them
    out = []
    for j in range(max(0, token - width), min(len(ids), token + width + 1)):
        piece = f"{ids[j]} {vocab.get(ids[j], own.get(ids[j], '?'))!r}"
        if offsets is not None and j < len(offsets):
            s, e = offsets[j]
            piece += f" [{s}, {e}] {text[s:e]!r}"
        out.append(("> " if j == token else "  ") + f"token {j}: {piece}")
    if token >= len(ids):
        out.append(f"> token {token}: (none: {len(ids)} tokens)")
    return "\n".join("      " + line for line in out)


def describe(report: TokenReport, row: RecordDiff) -> str:
    """What differs in one record, with the tokens around the first divergent one on both sides."""
    e, a = report.expected[row.index], report.actual[row.index]
    head = f"record {row.index} ({row.name}, text {e['text'][:60]!r})"
    if "text" in row.what:
        return f"{head}: the port's text differs at character {row.char} ({a['text'][:60]!r}): it tokenized another text"
    parts = []
    if row.token is not None:
        kinds = [k for k in ("ids", "offsets") if k in row.what]
        parts.append(f"token {row.token}: {' and '.join(kinds) or 'offsets'} differ")
    if "decoded" in row.what:
        parts.append(f"decoded differs at character {row.char}: expected {e['decoded'][:60]!r}, "
                     f"got {a['decoded'][:60]!r}")
    parts += [w for w in row.what if w.startswith("not recorded")]
    text = f"{head}, " + "; ".join(parts)
    if row.token is not None:
        vocab = _vocab(report.expected)
        text += f"\n    expected:\n{_window(e, vocab, row.token)}\n    port:\n{_window(a, vocab, row.token)}"
    return text


def format_token_report(report: TokenReport, failures_only: bool = False) -> str:
    """One line per failing record (every record unless failures_only), then the verdict."""
    lines = []
    for r in report.rows:
        if r.ok and failures_only:
            continue
        status = "ok" if r.ok else "FAIL " + ", ".join(r.what)
        skipped = f" (not recorded: {', '.join(s.split(': ')[1] for s in r.skipped)})" if r.skipped else ""
        lines.append(f"{r.index:5} {r.name[:48]:48} {len(report.expected[r.index]['ids']):6} tokens  {status}{skipped}")
    lines += [f"FAIL: {p}" for p in report.problems]
    first = report.first_divergence
    if first is not None:
        lines.append(f"FAIL: first divergence at {describe(report, first)}")
        failing = sum(not r.ok for r in report.rows)
        lines.append(f"FAIL: {failing} of {len(report.rows)} records differ")
    elif report.ok:
        skipped = sorted({s.split(": ")[1] for r in report.rows for s in r.skipped})
        lines.append(f"PASS: {len(report.rows)} records equal (ids, offsets and decoded text)"
                     + (f"; not recorded by the port: {', '.join(skipped)}" if skipped else ""))
    return "\n".join(lines)
