"""`minibloom generate`: continue a text, streaming the new tokens, then a timing line.

The flags choose the decoding (greedy unless --sample, --temp > 0, --top-p or --top-k, as
llama.cpp); the checkpoint's generation_config.json gives the token ids, stop strings and
constraints. Everything is checked before the first token is printed: the flags and the prompt
before the model loads, the generation (`generation.plan`) after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .common import UsageError, add_checkpoint_options, check_checkpoint, load_tokenizer
from .printer import TokenPrinter
from .prompt import read_prompt
from .timing import Timer, setup_line, warm_up


def add_parser(sub) -> None:
    """Add `generate` to the `minibloom` subcommands."""
    gen = sub.add_parser("generate", help="continue a text, streaming the new tokens",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Continue TEXT with BloomForCausalLM, printing tokens as they come, then a timing\n"
                                     "line on stderr (load, prompt evaluation, per token). Greedy unless --sample,\n"
                                     "--temp > 0, --top-p or --top-k is given (as llama.cpp). The prompt: TEXT (with\n"
                                     "\\n and \\t escapes), -f FILE, or - / -f - for stdin (16 MiB at most); --ids\n"
                                     "for a checkpoint without a tokenizer. The flags choose the decoding; the\n"
                                     "checkpoint's generation_config.json gives the token ids, stop strings and\n"
                                     "constraints (min_length, no_repeat_ngram_size, bad_words_ids, ...); a setting in it\n"
                                     "that minibloom does not implement (typical_p, ...) is named, and nothing runs.")
    gen.add_argument("text", nargs="?", help="the prompt ('-': read it from stdin)")
    gen.add_argument("-f", "--file", metavar="FILE", help="read the prompt from FILE ('-': stdin)")
    gen.add_argument("--ids", type=int, nargs="+", metavar="ID", help="the prompt as token ids")
    gen.add_argument("--no-escape", action="store_true", help="take \\n and \\t in TEXT literally")
    add_checkpoint_options(gen)
    gen.add_argument("-n", "--max-new-tokens", type=int, default=60)
    gen.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    gen.add_argument("--temp", "--temperature", type=float, dest="temperature", default=None,
                     help="sampling temperature (implies --sample; 0 means greedy)")
    gen.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens (implies --sample)")
    gen.add_argument("--top-p", type=float, default=None, help="nucleus sampling (implies --sample)")
    gen.add_argument("--repeat-penalty", "--repetition-penalty", type=float, dest="repetition_penalty", default=None,
                     help="penalise tokens already in the text (default: generation_config.json's, else 1.0: off)")
    gen.add_argument("--num-beams", type=int, default=1, help="beam search (no streaming)")
    gen.add_argument("--seed", type=int, default=None,
                     help="seed for sampling (default: a random one, printed so the run can be repeated)")


def run(args: argparse.Namespace) -> None:
    """Check the flags and the prompt, load the model, check the generation, then stream it."""
    settings = sampling_settings(args)
    text = read_prompt(args)
    directory = check_checkpoint(args.checkpoint)
    seed = args.seed
    if settings["do_sample"] and seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    timer = Timer()
    model, tok, prompt = load(args, directory, text)
    timer.mark("loaded")
    if prompt.size == 0:
        raise UsageError("the prompt encodes to no tokens; give some text to continue")
    check_generation(model, directory, prompt, seed, tok, settings, beams=args.num_beams > 1)
    warm_up(model)
    timer.mark("ready")
    if settings["do_sample"]:
        print(f"seed: {seed}", file=sys.stderr)  # rerun with --seed to get the same text
    out = show_generation(model, args, text, tok, prompt, seed, settings, timer)
    print(timer.summary(prompt.shape[1], out.shape[1] - prompt.shape[1], setup_line(model)), file=sys.stderr)


def load(args: argparse.Namespace, directory: str, text: str | None):
    """(the causal LM, its tokenizer or None, the prompt ids [1, T]). The tokenizer is loaded when
    the checkpoint has one, also for --ids (to print the new tokens as text)."""
    from ..heads import BloomForCausalLM

    has_tokenizer = os.path.isfile(os.path.join(directory, "tokenizer.json")) or not os.path.isdir(directory)
    tok = load_tokenizer(directory) if text is not None or has_tokenizer else None
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, storage=args.storage,
                                             threads=args.threads)
    if args.ids is None:
        return model, tok, tok(text, return_tensors="np")["input_ids"]
    bad = [i for i in args.ids if not 0 <= i < model.config.vocab_size]
    if bad:
        raise UsageError(f"--ids: {bad[0]} is not a token id of this model (0..{model.config.vocab_size - 1})")
    return model, tok, np.array([args.ids], np.int64)


def show_generation(model, args: argparse.Namespace, text: str | None, tok, prompt: np.ndarray, seed: int | None,
                    settings: dict, timer: Timer) -> np.ndarray:
    """Print the prompt, then each new token as it comes (beam search: all at the end); returns
    prompt + new tokens [1, L]."""
    printer = TokenPrinter(tok)
    print(text if text is not None else " ".join(map(str, args.ids)) + (" |" if tok is None else ""), end="",
          flush=True)

    def show(tokens: np.ndarray) -> None:
        timer.steps.append(time.perf_counter())
        printer.add(int(tokens[0]))

    out = model.generate(prompt, seed=seed, streamer=None if args.num_beams > 1 else show, progress=False,
                         tokenizer=tok, **settings)
    timer.mark("done")
    if args.num_beams > 1:
        for t in out[0, prompt.shape[1]:]:
            printer.add(int(t))
    printer.flush()
    print()
    return out


def sampling_settings(args: argparse.Namespace) -> dict:
    """generate's keyword arguments from the flags, checked (naming the flag) before the model loads.
    --temp, --top-p, --top-k imply sampling (as llama.cpp); --temp 0 means greedy."""
    check_flags(args)
    implied = args.temperature not in (None, 0) or args.top_p is not None or args.top_k is not None
    sample = (args.sample or implied) and args.temperature != 0
    if sample and args.num_beams > 1:
        raise UsageError("--num-beams > 1 cannot be combined with sampling (--sample, --temp, --top-p, --top-k)")
    # The flags decide how to decode, and the command prints one plain sequence, whatever the
    # checkpoint's generation_config.json says (do_sample, num_beams, return_dict_in_generate, ...).
    settings = dict(max_new_tokens=args.max_new_tokens, do_sample=sample, num_beams=args.num_beams,
                    return_dict_in_generate=False, output_scores=False, output_logits=False, num_return_sequences=1,
                    temperature=args.temperature or 1.0 if sample else 1.0,
                    top_k=(50 if args.top_k is None else args.top_k) if sample else 50,
                    top_p=(1.0 if args.top_p is None else args.top_p) if sample else 1.0)
    if args.repetition_penalty is not None:
        settings["repetition_penalty"] = args.repetition_penalty
    return settings


def check_flags(args: argparse.Namespace) -> None:
    """Each number flag in its range, naming the flag, before the model loads."""
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.temperature is not None and not args.temperature >= 0:
        raise UsageError(f"--temp must be >= 0 (0: greedy), got {args.temperature}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k is not None and args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0 (0: off), got {args.top_k}")
    if args.repetition_penalty is not None and not 0 < args.repetition_penalty < float("inf"):
        raise UsageError(f"--repeat-penalty must be > 0 and finite, got {args.repetition_penalty}")
    if args.temperature is not None and args.temperature == float("inf"):
        raise UsageError("--temp must be finite, got inf")
    if args.num_beams < 1:
        raise UsageError(f"--num-beams must be at least 1, got {args.num_beams}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")


def check_generation(model, directory: str, prompt: np.ndarray, seed: int | None, tok, settings: dict,
                     beams: bool) -> None:
    """Before anything is printed: every check generate makes (settings, lengths, memory), with the
    flags over the checkpoint's generation_config.json; a setting of that file minibloom does not
    implement, or one the flags cannot be combined with, is named as the file's."""
    from ..errors import InputError
    from ..generation import GENERATION_CONFIG_NAME, plan

    path = os.path.join(directory, GENERATION_CONFIG_NAME)
    where = path if os.path.isfile(path) else "the checkpoint's generation_config.json"
    unsupported = model.generation_config.unsupported()
    if unsupported:
        shown = ", ".join(f"{k}={v!r}" for k, v in unsupported.items())
        raise UsageError(f"{where} sets {shown}, which minibloom does not implement (transformers would apply "
                         "it): remove it from the file to generate here")
    try:
        plan(model, prompt, streamer=None if beams else print, seed=seed, tokenizer=tok, **settings)
    except InputError as e:
        if not os.path.isfile(path):
            raise
        raise UsageError(f"{e} (the flags with the settings of {path})") from None
