"""The `minibloom` command as a llama.cpp user drives it, in a subprocess: the prompt from stdin or a
file, escapes, seeds, the timing line, --ids, info's dtypes and vocab note, and every error path as
one line naming the flag, exit 2, no traceback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer
from tests.conftest import GOLDEN_DIR

TOK = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
LM = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
NO_TOKENIZER = os.path.join(GOLDEN_DIR, "heads8")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("minibloom")
    cmd = [exe] if exe else [sys.executable, "-m", "minibloom"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True, text=True, timeout=120, env=env)


def greedy_text(prompt: str, n: int) -> str:
    ids = LM.generate(TOK(prompt, return_tensors="np")["input_ids"], max_new_tokens=n)
    return TOK.decode(ids[0], skip_special_tokens=True)


def test_prompt_from_stdin_file_and_escapes_all_give_the_same_greedy_text(tmp_path):
    expected = greedy_text("ROMEO.\nBut", 6) + "\n"
    (tmp_path / "p.txt").write_text("ROMEO.\nBut")
    for args, stdin in ((("-",), "ROMEO.\nBut"), (("-f", "-"), "ROMEO.\nBut"), (("-f", str(tmp_path / "p.txt")), None),
                        (("ROMEO.\\nBut",), None)):
        out = run("generate", *args, "-n", "6", stdin=stdin)
        assert out.returncode == 0, out.stderr
        assert out.stdout == expected, args
    literal = run("generate", "ROMEO.\\nBut", "--no-escape", "-n", "2")
    assert literal.stdout.startswith("ROMEO.\\nBut")


TIMING = re.compile(r"\[load \d+\.\d+ s \| prompt eval (\d+) tokens in \d+\.\d+ s \([\d.]+ tokens/s\) \| "
                    r"eval (\d+) tokens, [\d.]+ ms per token \([\d.]+ tokens/s\) \| (\d+) tokens in [\d.]+ s")


def test_the_timing_line_counts_prompt_and_generated_tokens():
    out = run("generate", "ROMEO.", "-n", "7")
    match = TIMING.search(out.stderr)
    assert match, out.stderr
    assert (int(match[1]), int(match[2]), int(match[3])) == (len(TOK.encode("ROMEO.")), 6, 7)


def test_sampling_prints_a_random_seed_that_reproduces_the_run():
    a, b = run("generate", "ROMEO.", "--temp", "1.2", "-n", "12"), run("generate", "ROMEO.", "--temp", "1.2", "-n", "12")
    seeds = [int(re.search(r"seed: (\d+)", r.stderr)[1]) for r in (a, b)]
    assert seeds[0] != seeds[1]  # 32 random bits each
    again = run("generate", "ROMEO.", "--temp", "1.2", "-n", "12", "--seed", str(seeds[0]))
    assert again.stdout == a.stdout and f"seed: {seeds[0]}" in again.stderr
    ids = LM.generate(TOK("ROMEO.", return_tensors="np")["input_ids"], max_new_tokens=12, do_sample=True,
                      temperature=1.2, seed=seeds[0])
    assert a.stdout == TOK.decode(ids[0], skip_special_tokens=True) + "\n"


def test_top_p_implies_sampling_and_temp_0_is_greedy():
    sampled = run("generate", "ROMEO.", "--top-p", "0.9", "-n", "5", "--seed", "1")
    assert "seed: 1" in sampled.stderr
    greedy = run("generate", "ROMEO.", "--temp", "0", "-n", "5")
    assert "seed:" not in greedy.stderr and greedy.stdout == greedy_text("ROMEO.", 5) + "\n"


def test_ids_prompt_on_a_checkpoint_without_a_tokenizer():
    out = run("generate", "--ids", "4", "5", "6", "--checkpoint", NO_TOKENIZER, "-n", "3")
    assert out.returncode == 0, out.stderr
    lm = BloomForCausalLM.from_pretrained(NO_TOKENIZER)
    ids = lm.generate(np.array([[4, 5, 6]]), max_new_tokens=3)[0]
    assert out.stdout.split() == ["4", "5", "6", "|", *map(str, ids[3:])]


def test_ids_beyond_the_tokenizer_vocab_print_as_placeholders(tmp_path):
    """A model with more rows than the tokenizer has tokens (as BLOOM: 250880 vs 250680) may pick one."""
    ck = tmp_path / "ck"
    LM.save_pretrained(ck)
    lm = BloomForCausalLM.from_pretrained(ck)
    V = lm.config.vocab_size
    lm.resize_token_embeddings(V + 4)
    first = int(LM.generate(TOK("ROMEO.", return_tensors="np")["input_ids"], max_new_tokens=1)[0, -1])
    emb = lm.get_input_embeddings()
    emb[V:] = 2 * emb[first]  # the logit of the first greedy token, doubled: the new rows win
    lm.save_pretrained(ck)
    TOK.save_pretrained(ck)
    info = run("info", str(ck))
    assert f"note: the tokenizer has {V} tokens, the model {V + 4} rows" in info.stdout
    out = run("generate", "ROMEO.", "--checkpoint", str(ck), "-n", "6")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    expected = BloomForCausalLM.from_pretrained(ck).generate(TOK("ROMEO.", return_tensors="np")["input_ids"],
                                                          max_new_tokens=6)
    unknown = [int(t) for t in expected[0, 2:] if t >= V]
    assert unknown and all(f"<id {t}>" in out.stdout for t in unknown)


def test_info_shows_weight_dtypes_and_accepts_checkpoint_option():
    a, b = run("info", "--checkpoint", EMBEDDED_CHECKPOINT), run("info", EMBEDDED_CHECKPOINT)
    assert a.returncode == 0 and a.stdout == b.stdout
    assert re.search(r"weight_dtypes\s+F16 x\d+ tensors", a.stdout)
    forward = run("forward", "--checkpoint", NO_TOKENIZER, "--ids", "1", "2")
    assert forward.returncode == 0 and "shape (2, 32)" in forward.stdout


@pytest.mark.parametrize("args, flag", [
    (("generate", "x", "-n", "0"), "--max-new-tokens"),
    (("generate", "x", "--max-new-tokens", "abc"), "--max-new-tokens"),
    (("generate", "x", "--temp", "-1"), "--temp"),
    (("generate", "x", "--top-p", "1.5"), "--top-p"),
    (("generate", "x", "--top-k", "-2"), "--top-k"),
    (("generate", "x", "--repeat-penalty", "0"), "--repeat-penalty"),
    (("generate", "x", "--num-beams", "0"), "--num-beams"),
    (("generate", "x", "--num-beams", "2", "--temp", "0.7"), "--num-beams"),
    (("generate",), "--ids"),
    (("generate", "x", "-f", "p.txt"), "-f"),
    (("generate", "-f", "/no/such/prompt.txt"), "-f /no/such/prompt.txt"),
    (("generate", "x", "--checkpoint", "/no/such/ckpt"), "--checkpoint: checkpoint directory not found: /no/such/ckpt"),
    (("generate", "x", "--checkpoint", "tests/golden/nope"), "--checkpoint: checkpoint directory not found: tests/golden/nope"),
    (("generate", "x", "--checkpoint", "tests"), "no config.json"),
    (("generate", "x", "--checkpoint", NO_TOKENIZER), "--ids"),
    (("generate", "--ids", "1", "99999", "--checkpoint", NO_TOKENIZER), "--ids"),
    (("generate", "x", "--backend", "fortran"), "--backend"),
    (("generate", "x", "--bogus"), "--bogus"),
    (("info", "/no/such/ckpt"), "DIR: checkpoint directory not found: /no/such/ckpt"),
    (("info", "--checkpoint", "/no/such/ckpt"), "--checkpoint: checkpoint directory not found: /no/such/ckpt"),
    (("info", EMBEDDED_CHECKPOINT, "--checkpoint", EMBEDDED_CHECKPOINT), "--checkpoint"),
    (("forward", "--checkpoint", "/no/such/ckpt", "--ids", "1"), "--checkpoint"),
    (("tokenize", "x", "--checkpoint", "/no/such/ckpt"), "--checkpoint"),
])
def test_every_error_is_one_line_naming_the_flag_with_exit_2(args, flag):
    out = run(*args)
    assert out.returncode == 2, out
    assert out.stderr.startswith("minibloom: error: ") and flag in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "seed" not in out.stdout and "[load" not in out.stderr  # checked before the model loads


def test_the_readme_showcase_is_what_the_command_prints():
    import shlex

    readme = open(os.path.join(os.path.dirname(GOLDEN_DIR), "..", "README.md"), encoding="utf-8").read()
    command = re.search(r"&& (minibloom generate [^\n]+)\n```", readme)[1]
    shown = re.search(re.escape(command) + r"\n```\n.*?```text\n(.*?)```", readme, flags=re.S)[1]
    out = run(*shlex.split(command)[1:])
    assert out.returncode == 0 and out.stdout == shown
    assert not shown.startswith("ROMEO.]")
