"""`minibloom explain` (minibloom/explain/report.py, cli.py): the data's properties, the files, the
directory it may write into, and the page in a real headless browser (Chromium, when installed)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

from minibloom import EMBEDDED_CHECKPOINT, BloomConfig, BloomForCausalLM, BloomTokenizer, InputError
from minibloom.explain import logit_lens
from minibloom.explain.cli import add_parser, add_tokenize_options, cmd_explain, tokenize_explain
from minibloom.explain.report import explain, png_bytes, write_report

TEXT = "To be, or not to be: that is the question.</script><b>x</b>"


@pytest.fixture(scope="module")
def tok():
    return BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)


@pytest.fixture(scope="module")
def data(tok):
    return explain(BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT), tok, TEXT, k=3)


def tiny(n_layer: int) -> BloomForCausalLM:
    return BloomForCausalLM(BloomConfig(vocab_size=4096, hidden_size=16, n_head=2, n_layer=n_layer), seed=0)


def test_the_data_holds_what_the_page_shows(data, tok):
    ids = tok.encode_ids(TEXT)
    L, N, T = 4, 8, len(ids)
    assert data["input_ids"] == ids and len(data["tokens"]) == T
    assert [i for p in data["pieces"] for i in p["ids"]] == ids
    att = np.array(data["attentions"])
    assert att.shape == (L, N, T, T)
    np.testing.assert_allclose(att.sum(-1), 1, atol=1e-5)
    assert not np.triu(att, 1).any()  # causal: no key after its query
    lens = logit_lens(BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT), np.array(ids), k=3)
    assert data["logit_lens"]["top_ids"] == lens.top_ids.tolist()
    np.testing.assert_allclose(data["logit_lens"]["top_probs"], lens.top_probs, atol=1e-6)
    back = np.arange(T)[:, None] - np.arange(T)
    np.testing.assert_allclose(data["heads"]["mean_distance"], (att * back).sum(-1).mean(-1), atol=1e-3)
    assert data["heads"]["alibi_slopes"] == [2.0 ** -(i + 1) for i in range(N)]  # 8 heads: 1/2 .. 1/256
    r = data["residual"]
    assert len(r["stream"]) == L + 1 and len(r["attention"]) == len(r["mlp"]) == L
    assert all(v > 0 for v in r["stream"] + r["attention"] + r["mlp"])


def read_png(raw: bytes) -> np.ndarray:
    """An independent reader of the writer's subset: IHDR, IDAT, IEND, each CRC checked, filter 0."""
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(raw):
        (n,), tag = struct.unpack(">I", raw[pos:pos + 4]), raw[pos + 4:pos + 8]
        body = raw[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", raw[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body)
        chunks[tag] = body
        pos += 12 + n
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + 3 * w)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(h, w, 3)


def test_png_writer_round_trips():
    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_png(png_bytes(image)), image)


def test_report_files(tmp_path, data):
    names = write_report(tmp_path / "out", data)
    assert names == ["attention_layer0.png", "attention_layer1.png", "attention_layer2.png",
                     "attention_layer3.png", "explain.json", "index.html"]
    out = tmp_path / "out"
    assert json.loads((out / "explain.json").read_text(encoding="utf-8")) == data
    html = (out / "index.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2  # the text's own "</script>" cannot close the page's script
    for fetch in ("http://", "https://", "<link", "src=\"http", "@import"):
        assert fetch not in html.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a fetch
    picture = read_png((out / "attention_layer0.png").read_bytes())
    assert picture.shape[2] == 3 and picture.min() < 128  # something is drawn


def test_report_owns_only_what_it_wrote(tmp_path, tok):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not written by minibloom explain.*--force"):
        write_report(out, explain(tiny(3), tok, "a b"))
    assert os.listdir(out) == ["notes.txt"]
    write_report(out, explain(tiny(3), tok, "a b"), force=True)
    assert (out / "attention_layer2.png").exists() and (out / "notes.txt").read_text() == "mine"
    write_report(out, explain(tiny(1), tok, "a b"))  # ours now: rewritten without --force; stale layers go
    assert sorted(os.listdir(out)) == [".minibloom-explain.json", "attention_layer0.png", "explain.json",
                                       "index.html", "notes.txt"]


@pytest.mark.parametrize("text, message", [("", "no tokens"), ("a " * 200, "at most 128")])
def test_bad_texts_are_input_errors(tok, text, message):
    with pytest.raises(InputError, match=message):
        explain(tiny(1), tok, text)


def parse(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    add_tokenize_options(sub.add_parser("tokenize"))
    return parser.parse_args(argv)


def test_cmd_explain_writes_the_page(tmp_path, capsys):
    cmd_explain(parse(["explain", "ROMEO. But soft", "--out", str(tmp_path / "page"), "--top-k", "2"]))
    assert "open " in capsys.readouterr().out
    data = json.loads((tmp_path / "page" / "explain.json").read_text(encoding="utf-8"))
    assert np.array(data["logit_lens"]["top_ids"]).shape[-1] == 2
    with pytest.raises(InputError, match="--top-k"):
        cmd_explain(parse(["explain", "x", "--out", str(tmp_path / "p2"), "--top-k", "0"]))
    assert not (tmp_path / "p2").exists()


@pytest.mark.parametrize("flags, text", [([], "ROMEO.\nBut"), (["--no-escape"], "ROMEO.\\nBut")])
def test_cmd_explain_reads_escapes_as_generate_does(tmp_path, tok, flags, text):
    cmd_explain(parse(["explain", "ROMEO.\\nBut", "--out", str(tmp_path / "page"), *flags]))
    data = json.loads((tmp_path / "page" / "explain.json").read_text(encoding="utf-8"))
    assert data["input_ids"] == tok.encode(text)


def test_tokenize_explain_text_and_json(tok):
    assert parse(["tokenize", "--explain"]).explain
    text = tokenize_explain(tok, " lovers")
    assert text.startswith("' lovers'  bytes: Ġ l o v e r s") and "rank" in text
    as_json = json.loads(tokenize_explain(tok, " lovers", as_json=True))
    assert as_json["input_ids"] == tok.encode_ids(" lovers") and as_json["pieces"][0]["merges"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("MINIBLOOM_REQUIRE_BROWSER"),
                    reason="the browser test needs Chromium on PATH (apt-get install chromium)")
def test_page_renders_in_a_headless_browser(tmp_path, data):
    assert CHROMIUM is not None, "MINIBLOOM_REQUIRE_BROWSER is set (CI) but Chromium is not on PATH"
    write_report(tmp_path / "page", data)
    url = "file://" + str(tmp_path / "page" / "index.html")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'data-explain="ok"' in dom, f"the page's script did not finish: {dom[:300]!r}"
    assert dom.count("<tr>") > 5 and "rank " in dom  # the lens table and the merges were drawn
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,1600", url], capture_output=True,
                   timeout=120)
    assert shot.exists(), "Chromium wrote no screenshot"
    raw = shot.read_bytes()
    w, h = struct.unpack(">II", raw[16:24])
    assert (w, h) == (1200, 1600)
    assert len(raw) > 20_000, "the screenshot is (nearly) blank"  # a white page compresses to a few KB
