"""The `minibloom` command as a llama.cpp user drives it, in a subprocess: the prompt from stdin or a
file, escapes, seeds, the timing line, --ids, info's dtypes and vocab note, and every error path as
one line naming the flag, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer
from tests.conftest import HF_EXPECTED_DIR

TOK = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
LM = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
NO_TOKENIZER = os.path.join(HF_EXPECTED_DIR, "heads8")


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
    (("generate", "x", "--checkpoint", "tests/hf_expected/nope"), "--checkpoint: checkpoint directory not found: tests/hf_expected/nope"),
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

    readme = open(os.path.join(os.path.dirname(HF_EXPECTED_DIR), "..", "README.md"), encoding="utf-8").read()
    command = re.search(r"&& (minibloom generate [^\n]+)\n```", readme)[1]
    shown = re.search(re.escape(command) + r"\n```\n.*?```text\n(.*?)```", readme, flags=re.S)[1]
    out = run(*shlex.split(command)[1:])
    assert out.returncode == 0 and out.stdout == shown
    assert not shown.startswith("ROMEO.]")


# issue 23: generate runs on a checkpoint whatever its generation_config.json holds, printing one plain
# sequence, or names the setting it cannot honour before printing anything. In-process (cli.main), fast.
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    target = tmp_path_factory.mktemp("gen") / "ck"
    shutil.copytree(EMBEDDED_CHECKPOINT, target)
    return target


def generate_with(checkpoint, settings: dict, *flags: str, capsys):
    from minibloom import cli

    (checkpoint / "generation_config.json").write_text(json.dumps({**settings, "transformers_version": "4.57.1"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be lines of noise on the user's stderr
        status = cli.main(["generate", "ROMEO.", "--checkpoint", str(checkpoint), "-n", "4", *flags])
    out, err = capsys.readouterr()
    return status, out, err


RUNS = [  # transformers' fields that the flags override, that change only what is returned, or that are honoured
    {"return_dict_in_generate": True}, {"return_dict_in_generate": True, "output_scores": True, "output_logits": True},
    {"output_attentions": True, "output_hidden_states": True}, {"num_return_sequences": 3, "do_sample": True},
    {"num_beams": 4, "num_return_sequences": 2}, {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 10},
    {"temperature": 0.5}, {"max_length": 3}, {"max_new_tokens": 1}, {"use_cache": False},
    {"cache_implementation": "static"}, {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2,
                                         "pad_token_id": 3}, {"renormalize_logits": True},
    {"remove_invalid_values": True}, {"guidance_scale": 1.0}, {"typical_p": 1.0}, {"low_memory": True},
    {"early_stopping": True, "length_penalty": 0.5},
]
HONOURED = [  # fields the command applies as generate does
    {"stop_strings": ["\n"]}, {"eos_token_id": [2, 13]}, {"min_new_tokens": 3}, {"no_repeat_ngram_size": 1},
    {"bad_words_ids": [[13]]}, {"repetition_penalty": 1.5}, {"min_length": 8},
]
REFUSED = [  # transformers would apply these; minibloom does not implement them
    {"typical_p": 0.9}, {"min_p": 0.1}, {"epsilon_cutoff": 3e-4}, {"eta_cutoff": 1e-3}, {"forced_eos_token_id": 2},
    {"forced_bos_token_id": 1}, {"suppress_tokens": [5]}, {"begin_suppress_tokens": [5]},
    {"sequence_bias": [[[5], -1.0]]}, {"exponential_decay_length_penalty": [5, 1.5]}, {"guidance_scale": 1.5},
    {"max_time": 1.0}, {"penalty_alpha": 0.6, "top_k": 4}, {"num_beam_groups": 2, "diversity_penalty": 1.0},
    {"encoder_repetition_penalty": 1.2}, {"encoder_no_repeat_ngram_size": 2}, {"force_words_ids": [[5]]},
    {"dola_layers": "low"}, {"token_healing": True}, {"watermarking_config": {"greenlist_ratio": 0.25}},
]


@pytest.mark.parametrize("settings", RUNS, ids=lambda s: ",".join(s))
def test_generate_prints_one_plain_greedy_sequence_whatever_the_file_asks(checkpoint, settings, capsys):
    status, out, err = generate_with(checkpoint, settings, capsys=capsys)
    assert status == 0, err
    assert out == greedy_text("ROMEO.", 4) + "\n"
    assert err.count("\n") == 1 and "[load" in err  # the timing line only: no warning, no traceback


@pytest.mark.parametrize("settings", HONOURED, ids=lambda s: ",".join(s))
def test_generate_applies_the_files_constraints(checkpoint, settings, capsys):
    from minibloom.generation import GenerationConfig

    status, out, err = generate_with(checkpoint, settings, capsys=capsys)
    assert status == 0, err
    lm = BloomForCausalLM.from_pretrained(checkpoint)
    assert lm.generation_config == GenerationConfig.from_dict(settings)
    ids = lm.generate(TOK("ROMEO.", return_tensors="np")["input_ids"], max_new_tokens=4, tokenizer=TOK)
    assert out == TOK.decode(ids[0], skip_special_tokens=True) + "\n"


@pytest.mark.parametrize("settings", REFUSED, ids=lambda s: ",".join(s))
def test_generate_names_a_setting_it_cannot_honour_before_printing(checkpoint, settings, capsys):
    status, out, err = generate_with(checkpoint, settings, capsys=capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "generation_config.json" in err and next(iter(settings)) in err


@pytest.mark.parametrize("settings, flags, name", [
    ({"no_repeat_ngram_size": 2}, ("--num-beams", "2"), "no_repeat_ngram_size"),
    ({"stop_strings": "\n"}, ("--num-beams", "2"), "stop_strings"),
    ({"bad_words_ids": [[99999]]}, (), "bad_words_ids"),
    ({"eos_token_id": "x"}, (), "eos_token_id"),
    ({"min_length": -1}, ("--temp", "0.8"), "min_length"),
])
def test_a_file_setting_the_flags_cannot_run_with_is_one_line_before_printing(checkpoint, settings, flags, name,
                                                                              capsys):
    status, out, err = generate_with(checkpoint, settings, *flags, capsys=capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and name in err and "generation_config.json" in err


def test_stop_strings_without_a_tokenizer_are_named(tmp_path, capsys):
    from minibloom import cli

    target = tmp_path / "ck"
    shutil.copytree(NO_TOKENIZER, target)
    (target / "generation_config.json").write_text('{"stop_strings": ["x"]}')
    assert cli.main(["generate", "--ids", "4", "5", "--checkpoint", str(target), "-n", "2"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "stop_strings" in err
