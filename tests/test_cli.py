"""The `minibloom` console script, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomModel
from tests.conftest import HF_EXPECTED_DIR


def run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("minibloom")
    cmd = [exe] if exe else [sys.executable, "-m", "minibloom"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def test_init_info_forward_round_trip(tmp_path):
    target = str(tmp_path / "ck")
    assert run("init", target, "--n-layer", "1", "--vocab-size", "50", "--seed", "3").returncode == 0
    info = run("info", target, "--json")
    assert info.returncode == 0
    summary = json.loads(info.stdout)
    assert (summary["n_layer"], summary["vocab_size"], summary["weight_files"]) == (1, 50, ["model.safetensors"])
    assert summary["parameters"] == sum(v.size for v in BloomModel.from_pretrained(target).params.values())
    out = run("forward", target, "--ids", "1", "2", "3")
    assert out.returncode == 0 and "shape (3, 64)" in out.stdout


def test_forward_prints_the_model_output():
    case = os.path.join(HF_EXPECTED_DIR, "heads8")
    out = run("forward", case, "--ids", "4", "5")
    hidden = BloomModel.from_pretrained(case)(np.array([[4, 5]])).last_hidden_state[0]
    assert f"mean {hidden.mean():.6f}" in out.stdout and f"std {hidden.std():.6f}" in out.stdout


def test_forward_on_the_numba_backend_with_2_byte_storage():
    case = os.path.join(HF_EXPECTED_DIR, "bf16")
    out = run("forward", case, "--ids", "4", "5", "--backend", "numba", "--storage", "bfloat16")
    hidden = BloomModel.from_pretrained(case)(np.array([[4, 5]])).last_hidden_state[0]
    assert f"std {hidden.std():.6f}" in out.stdout


def test_output_into_a_closed_pipe_is_not_a_traceback():
    case = os.path.join(HF_EXPECTED_DIR, "heads8")
    ids = " ".join(["7"] * 3000)  # ~200 kB of output: more than a pipe buffer holds
    done = subprocess.run(f"{sys.executable} -m minibloom forward {case} --ids {ids} | head -1",
                          shell=True, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args,message", [
    (("info", "/nonexistent/checkpoint"), "checkpoint directory not found: /nonexistent/checkpoint"),
    (("forward", os.path.join(HF_EXPECTED_DIR, "heads8"), "--ids", "1", "64"), "input_ids[0, 1] = 64 is outside"),
])
def test_user_errors_print_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("minibloom: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_corrupt_weights_file_is_a_one_line_error(tmp_path):
    shutil.copytree(os.path.join(HF_EXPECTED_DIR, "heads8"), tmp_path / "ck")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{oops")
    result = run("info", str(tmp_path / "ck"))
    assert result.returncode == 2 and "model.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_help_teaches_every_command():
    out = run("--help").stdout
    for command in ("generate", "tokenize", "info", "forward", "golden", "init"):
        assert command in out
        assert run(command, "--help").returncode == 0
    assert "first divergent op" in run("golden", "compare", "--help").stdout.replace("\n", " ")


EMBEDDED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "minibloom", "data",
                        "shakespeare")


def test_generate_on_the_embedded_model_is_deterministic_and_streams():
    from minibloom import BloomForCausalLM, BloomTokenizer

    a = run("generate", "ROMEO.", "--max-new-tokens", "12", "--sample", "--seed", "7")
    b = run("generate", "ROMEO.", "--max-new-tokens", "12", "--sample", "--seed", "7")
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.startswith("ROMEO.")
    assert "tokens/s" in a.stderr
    greedy = run("generate", "ROMEO.", "--max-new-tokens", "8")
    tok, lm = BloomTokenizer.from_pretrained(EMBEDDED), BloomForCausalLM.from_pretrained(EMBEDDED)
    ids = lm.generate(tok("ROMEO.", return_tensors="np")["input_ids"], max_new_tokens=8)
    assert greedy.stdout == tok.decode(ids[0], skip_special_tokens=True) + "\n"


def test_tokenize_prints_ids_tokens_and_offsets():
    from minibloom import BloomTokenizer

    out = run("tokenize", "Hello, world", "--json")
    data = json.loads(out.stdout)
    ids, offsets = BloomTokenizer.from_pretrained(EMBEDDED).encode_with_offsets("Hello, world")
    assert data["input_ids"] == ids and [(r["start"], r["end"]) for r in data["tokens"]] == offsets
    table = run("tokenize", "Hello, world")
    assert table.returncode == 0 and f"{len(ids)} tokens for 12 characters" in table.stdout


def test_golden_dump_and_compare_exit_codes(tmp_path):
    from minibloom import golden
    from minibloom.safetensors_io import load_file, read_header, save_file

    path = str(tmp_path / "g.safetensors")
    assert run("golden", "dump", "--text", "To be, or not", "-o", path).returncode == 0
    same = run("golden", "compare", path, EMBEDDED, "--backend", "numba")
    assert same.returncode == 0 and "PASS" in same.stdout
    tensors, meta = load_file(path), read_header(path)[1]
    tensors["h.2.mlp.gelu"] = tensors["h.2.mlp.gelu"] * np.float32(1.001)
    save_file(tensors, tmp_path / "bad.safetensors", metadata=meta)
    bad = run("golden", "compare", path, str(tmp_path / "bad.safetensors"), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["first_divergence"]["name"] == "h.2.mlp.gelu"
    assert golden.load(path).metadata["text"] == "To be, or not"
    broken = run("golden", "compare", path, str(tmp_path / "nothing.safetensors"))
    assert broken.returncode == 2 and broken.stderr.startswith("minibloom: error:") and "Traceback" not in broken.stderr


def test_text_commands_need_a_tokenizer():
    out = run("generate", "hello", "--checkpoint", os.path.join(HF_EXPECTED_DIR, "heads8"))
    assert out.returncode == 2 and "no tokenizer.json" in out.stderr


def test_forward_says_when_it_converts_and_takes_threads():
    case = os.path.join(HF_EXPECTED_DIR, "bf16")
    kept = run("forward", case, "--ids", "4", "5", "--threads", "1")  # auto: stays bfloat16, silently
    assert kept.returncode == 0 and "converting" not in kept.stderr
    converted = run("forward", case, "--ids", "4", "5", "--storage", "int8", "--threads", "2")
    assert converted.returncode == 0 and "converting the bfloat16 weights to int8" in converted.stderr
    refused = run("forward", case, "--ids", "4", "--threads", "0")
    assert refused.returncode != 0 and "threads must be a positive integer" in refused.stderr
    assert "Traceback" not in refused.stderr


# ---------------------------------------------------------------------------------------------- issue 23
def _fail_fast_on_a_runaway_read():
    """A child that reads without limit dies at 4 GiB of address space instead of taking the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def one_line_exit_2(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minibloom: error: ") and "Traceback" not in lines[0], lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == "", result.stdout[:200]  # refused before anything is printed
    return lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_prompt_from_a_device_a_fifo_or_a_directory_is_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # nobody writes it: opening it for reading would block forever
    for path, kind in (("/dev/zero", "character device"), (str(tmp_path / "fifo"), "FIFO"), (str(tmp_path), "")):
        result = subprocess.run([sys.executable, "-m", "minibloom", "generate", "-f", path], capture_output=True,
                                text=True, timeout=60, preexec_fn=_fail_fast_on_a_runaway_read)
        one_line_exit_2(result, f"-f {path}", kind)


def test_a_prompt_past_the_limit_is_refused():
    from minibloom.cli.prompt import MAX_PROMPT_BYTES

    with open("/dev/zero", "rb") as endless:  # stdin that never ends
        result = subprocess.run([sys.executable, "-m", "minibloom", "generate", "-"], stdin=endless,
                                capture_output=True, text=True, timeout=60, preexec_fn=_fail_fast_on_a_runaway_read)
    one_line_exit_2(result, "stdin", f"{MAX_PROMPT_BYTES:,} bytes")
    big = subprocess.run([sys.executable, "-m", "minibloom", "generate", "-", "-n", "1"],
                         input=b"a" * (MAX_PROMPT_BYTES + 1), capture_output=True, timeout=60)
    assert big.returncode == 2 and b"bytes" in big.stderr


def test_init_refuses_to_overwrite_a_model_unless_forced(tmp_path):
    target = tmp_path / "ck"
    shutil.copytree(EMBEDDED, target, ignore=shutil.ignore_patterns("metadata.json"))  # a model, its tokenizer
    (target / "generation_config.json").write_text('{"max_new_tokens": 5}')
    (target / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    one_line_exit_2(run("init", str(target)), str(target), "--force")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # untouched
    forced = run("init", str(target), "--force", "--n-layer", "1")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors", "notes.txt"]
    assert (target / "notes.txt").read_text() == "mine"  # not a checkpoint file: kept
    assert BloomModel.from_pretrained(target).config.n_layer == 1
    (tmp_path / "empty").mkdir()
    assert run("init", str(tmp_path / "empty")).returncode == 0  # an empty or new directory needs no --force


def test_info_refuses_a_config_that_disagrees_with_the_tensors(tmp_path):
    target = tmp_path / "ck"
    assert run("init", str(target), "--n-layer", "2").returncode == 0
    config = json.loads((target / "config.json").read_text())
    for n_layer, message in ((10**9, "n_layer=1000000000"), (1, "unexpected tensor 'h.1.")):
        (target / "config.json").write_text(json.dumps({**config, "n_layer": n_layer}))
        one_line_exit_2(run("info", str(target)), str(target), message)
    (target / "config.json").write_text(json.dumps({**config, "hidden_size": 128}))
    one_line_exit_2(run("info", str(target)), "word_embeddings.weight")
    for case in ("heads8", "heads12_prefixed", "causal_lm_untied", "bf16"):  # consistent checkpoints still pass
        assert run("info", os.path.join(HF_EXPECTED_DIR, case)).returncode == 0, case


def test_explain_and_tokenize_explain_are_commands(tmp_path):
    """The microscope's two commands are wired into `minibloom` (minibloom/explain/cli.py)."""
    trace = run("tokenize", "--explain", "But soft", "--json")
    assert trace.returncode == 0, trace.stderr
    pieces = json.loads(trace.stdout)["pieces"]
    assert [p["piece"] for p in pieces] == ["But", " soft"]
    page = run("explain", "ROMEO.", "--out", str(tmp_path / "page"), "--top-k", "3")
    assert page.returncode == 0, page.stderr
    assert {"index.html", "explain.json"} <= set(os.listdir(tmp_path / "page"))
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    refused = run("explain", "ROMEO.", "--out", str(tmp_path / "theirs"))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path / "theirs") == ["notes.txt"]
