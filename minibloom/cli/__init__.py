"""The `minibloom` command: every subcommand works offline on the embedded checkpoint by default.

    minibloom generate "ROMEO."                 continue a text, streaming tokens, then a timing line
    minibloom generate -f prompt.txt --temp 0.8 the prompt from a file (- for stdin); --temp/--top-p sample
    minibloom tokenize "Hello world"            ids, tokens and offsets, as a table or --json
                                                (--explain: each piece's bytes and BPE merges, with ranks)
    minibloom explain "ROMEO." --out DIR        an offline page: logit lens, attention per head, merges
    minibloom info [DIR]                        config summary, parameters, weight dtypes, bytes, tokenizer
                                                (a config.json the tensors disagree with: exit 2, as loading)
    minibloom forward [DIR] --ids 1 2 3         run BloomModel and print the last hidden state
    minibloom golden dump --text "..." -o F     record every intermediate of a forward pass
    minibloom golden compare EXPECTED ACTUAL    name the first op where two runs part (exit 1)
    minibloom init DIR [--like bloom-560m]      write a randomly initialised checkpoint (hub layout); a model
                                                already in DIR is replaced only with --force
    minibloom train OUT --text FILE             fine-tune (text: causal LM; --rows JSONL/CSV: any head)

DIR / --checkpoint DIR (every command takes --checkpoint): a directory as transformers'
save_pretrained writes it (config.json, model.safetensors or a sharded index, tokenizer.json), or a
hub name with the `hub` extra. Default: the small BLOOM trained on Shakespeare that ships inside
minibloom. Errors in the user's input (flags, paths) are checked before the model loads and print
one line naming the flag, exit 2; those that need the model (a generation_config.json setting, a
length past the memory budget) are checked before anything is printed.
"""

from __future__ import annotations

import _thread
import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
import warnings

import numpy as np

from .. import __version__
from ..backends import BACKEND_CHOICES, BACKENDS
from ..config import BLOOM_FAMILY, BloomConfig
from ..embedded import EMBEDDED_CHECKPOINT
from ..errors import MinibloomError
from ..storage import STORAGES
from ..weights import check_sizes_against_tensors, checkpoint_files, param_count

TINY = dict(vocab_size=1024, hidden_size=64, n_layer=2, n_head=8)


class UsageError(MinibloomError):
    """A command-line mistake: printed as one line naming the flag, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (`minibloom: error: ...`) and exit 2, as every other
    user error; `--help` still shows the usage."""

    def error(self, message: str):
        print(f"minibloom: error: {self.prog.removeprefix('minibloom ')}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="minibloom", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="BLOOM in NumPy, offline: generate text, tokenize, inspect checkpoints, and dump or\n"
                    "compare golden outputs when porting BLOOM to another stack.",
        epilog=f"A checkpoint is a directory as transformers' save_pretrained writes it. Without one, the\n"
               f"commands use the embedded Shakespeare model ({EMBEDDED_CHECKPOINT}).\n"
               f"Run `minibloom COMMAND --help` for each command's options.")
    parser.add_argument("--version", action="version", version=f"minibloom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    _checkpoint_args(gen)
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

    tok = sub.add_parser("tokenize", help="show the ids, tokens and offsets of a text",
                         description="Encode TEXT with the checkpoint's tokenizer.json; print a table of "
                                     "position, id, token (byte-level form, 'Ġ' is a space), offsets and text.")
    tok.add_argument("text")
    tok.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR")
    tok.add_argument("--json", action="store_true", help="print JSON instead of a table")
    from ..explain.cli import add_parser as add_explain_parser, add_tokenize_options

    add_tokenize_options(tok)
    add_explain_parser(sub)

    info = sub.add_parser("info", help="summarise a checkpoint: config, parameters, dtypes, bytes, tokenizer")
    info.add_argument("directory", nargs="?", default=None, help="the checkpoint (or use --checkpoint)")
    info.add_argument("--checkpoint", default=None, metavar="DIR", help="default: the embedded model")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    fwd = sub.add_parser("forward", help="run BloomModel on token ids and print the last hidden state")
    fwd.add_argument("directory", nargs="?", default=None, help="the checkpoint (or use --checkpoint)")
    fwd.add_argument("--checkpoint", default=None, metavar="DIR", help="default: the embedded model")
    fwd.add_argument("--ids", type=int, nargs="+", required=True, metavar="ID", help="token ids of one sequence")
    _backend_args(fwd)

    golden = sub.add_parser("golden", help="dump or compare golden outputs (every intermediate tensor)",
                            description="Golden files record every intermediate of a forward pass under stable "
                                        "names (docs/golden.md), for checking a port of BLOOM op by op.")
    gsub = golden.add_subparsers(dest="golden_command", required=True, metavar="ACTION")
    dump = gsub.add_parser("dump", help="run a checkpoint and write a golden file",
                           description="Run a checkpoint on one or more sequences and write every intermediate. "
                                       "Several --text make a left-padded batch (the padding catches ALiBi "
                                       "position bugs); --inputs reads {\"input_ids\": [[...]], "
                                       "\"attention_mask\": [[...]]} from a JSON file. --storage defaults to "
                                       "the checkpoint's own dtype, so the weights stay memory-mapped and a "
                                       "checkpoint larger than the RAM streams through.")
    _checkpoint_args(dump)
    what = dump.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", action="append", help="text to tokenize (repeat for a left-padded batch)")
    what.add_argument("--ids", type=int, nargs="+", metavar="ID", help="token ids of one sequence")
    what.add_argument("--inputs", metavar="JSON", help="a JSON file with input_ids [B][T] and attention_mask [B][T]")
    dump.set_defaults(storage=None)  # default: the checkpoint's own dtype, so the weights stay memory-mapped
    dump.add_argument("-o", "--output", default="golden.safetensors")
    dump.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                      help="compute (and store) the golden as transformers does in this dtype")
    dump.add_argument("--generate", type=int, metavar="N", help="a generation golden instead: N greedy steps with "
                      "the KV cache, each step's logits and cache rows (docs/golden.md)")
    sampling = dump.add_argument_group("sampling golden (docs/golden.md, with --generate): each step's processed "
                                       "scores, probabilities, uniform draw and token, as generate(do_sample=True)")
    sampling.add_argument("--sample", action="store_true", help="sample the --generate steps instead of greedy")
    sampling.add_argument("--temperature", type=float, help="default 1.0")
    sampling.add_argument("--top-k", type=int, help="default 50 (generate's; 0: off)")
    sampling.add_argument("--top-p", type=float, help="default 1.0 (off)")
    sampling.add_argument("--seed", type=int, help="the seed generate(seed=...) takes (default 0)")
    train = dump.add_argument_group("training golden (docs/golden.md): the backward and AdamW steps too")
    train.add_argument("--train", action="store_true", help="also record the loss (labels = the ids, -100 on "
                       "padding), d.<name>, grad.<parameter> and --steps AdamW steps on the same batch")
    train.add_argument("--steps", type=int, help="AdamW steps to record (default 2)")
    train.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    train.add_argument("--betas", type=float, nargs=2, metavar=("B1", "B2"), help="default 0.9 0.999")
    train.add_argument("--eps", type=float, help="default 1e-8")
    train.add_argument("--weight-decay", type=float, help="decoupled weight decay (default 0.01)")
    tokz = gsub.add_parser("tokenize", help="write a tokenizer golden (JSON Lines: ids, offsets, decoded text)",
                           description="Tokenize a built-in corpus of hard cases (every split class, white space "
                                       "runs, emoji sequences, special-token strings, non-Latin scripts, long "
                                       "runs) and the --texts, one JSON record per text: {\"name\", \"text\", "
                                       "\"ids\", \"offsets\", \"decoded\", \"tokens\"}. Compare a port's records "
                                       "with `golden compare GOLDEN.jsonl PORT.jsonl` (docs/golden-format.md).")
    tokz.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR",
                      help="a directory holding tokenizer.json (default: the embedded model's)")
    tokz.add_argument("--texts", metavar="FILE", help="more texts: one per line, or a JSON list if FILE ends in .json")
    tokz.add_argument("--no-builtin", action="store_true", help="only the --texts, without the built-in corpus")
    tokz.add_argument("-o", "--output", required=True, metavar="OUT.jsonl")
    cmp = gsub.add_parser("compare", help="compare two golden files, or a golden file and a live run",
                          description="Compare every tensor of EXPECTED with ACTUAL (a golden file: safetensors, "
                                      ".npz or a directory of NAME.npy; or a checkpoint directory run on EXPECTED's "
                                      "inputs) in forward order. Exit 0 when all pass, 1 with the first divergent "
                                      "op and the position of its worst element, 2 when a file cannot be read. "
                                      "An EXPECTED ending in .jsonl is a tokenizer golden: ACTUAL is the port's "
                                      "records, and the first differing record and token are named. "
                                      "The format and every option: docs/golden-format.md.")
    cmp.add_argument("expected")
    cmp.add_argument("actual")
    cmp.add_argument("--atol", type=float, help="one absolute tolerance for every tensor (default: by depth and dtype)")
    cmp.add_argument("--rtol", type=float, help="an element passes if |diff| <= atol + rtol*|expected|")
    cmp.add_argument("--tolerances", metavar="FILE", help="JSON {name glob: {atol, rtol}}; the first match wins")
    cmp.add_argument("--only", action="append", default=[], metavar="GLOB",
                     help="compare only these names (repeatable)")
    cmp.add_argument("--layers", metavar="A:B", help="compare only layers A <= i < B (other tensors stay)")
    cmp.add_argument("--logits-only", action="store_true", help="compare only the head's outputs")
    cmp.add_argument("--skip-missing", action="store_true", help="a name the port did not record is reported "
                     "'not recorded' instead of failing")
    cmp.add_argument("--allow-unknown", action="store_true", help="names the golden does not hold (e.g. "
                     "'transformer.h.0...') are listed, not failed")
    cmp.add_argument("--ignore-padding", action="store_true", help="compare only real tokens and allowed "
                     "query/key pairs")
    cmp.add_argument("--scores-up-to-row-constant", action="store_true", help="compare alibi and scores up to a "
                     "per-row constant (the paper's relative ALiBi j - i)")
    cmp.add_argument("--port-dtype", choices=("float32", "float16", "bfloat16", "float64"),
                     help="the dtype the port computes in (default: each tensor's stored dtype)")
    cmp.add_argument("--failures-only", action="store_true", help="print only the failing tensors and layers")
    cmp.add_argument("--json", action="store_true")
    cmp.add_argument("--plot", metavar="PNG", help="write an error-vs-depth plot (needs matplotlib)")
    cmp.add_argument("--backend", choices=BACKENDS, default="numpy", help="for a live run")

    init = sub.add_parser("init", help="write a randomly initialised BLOOM checkpoint",
                          description="Write config.json + model.safetensors with transformers' initialisation "
                                      "(N(0, 0.02) matrices, zero biases). Default: a tiny model.")
    init.add_argument("directory")
    init.add_argument("--like", choices=sorted(BLOOM_FAMILY), help="use the shapes of a released model")
    for name in ("vocab_size", "hidden_size", "n_layer", "n_head"):
        init.add_argument("--" + name.replace("_", "-"), type=int, dest=name, help=f"default {TINY[name]}")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--force", action="store_true", help="replace a model already in DIR (its weights, "
                      "config, tokenizer and generation_config.json; other files stay)")
    init.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                      help="storage dtype of the weights (compute is always float32)")
    from ..training.cli import add_parser as add_train_parser

    add_train_parser(sub)
    return parser


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="auto (default): numba where it is installed, else numpy; numba: compiled kernels; "
                        "numpy: the readable reference (slower)")
    p.add_argument("--storage", choices=STORAGES, default="auto",
                   help="how weight matrices are held (compute stays float32); auto: as the checkpoint "
                        "stores them, others convert while loading and say so")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="compute threads (default: the cores this process may run on; 1 on a machine "
                        "other programs keep busy)")


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR", help="default: the embedded model")
    _backend_args(p)


def check_checkpoint(directory: str, flag: str = "--checkpoint", need_config: bool = True) -> str:
    """A checkpoint directory that exists and holds config.json (or a hub name), checked before any work."""
    from ..hub import looks_like_repo_id

    if os.path.isdir(directory):
        if need_config and not os.path.isfile(os.path.join(directory, "config.json")):
            raise UsageError(f"{flag} {directory}: not a checkpoint directory (no config.json in it)")
        return directory
    if os.path.exists(directory):
        raise UsageError(f"{flag} {directory}: not a directory")
    if looks_like_repo_id(directory) and "/" in directory and not os.path.isdir(directory.split("/")[0]):
        return directory  # a hub name ("bigscience/bloom-560m"): the HF cache, or a download, by from_pretrained
    raise UsageError(f"{flag}: checkpoint directory not found: {directory}")


def _tokenizer(directory: str):
    from ..tokenizer import BloomTokenizer

    if os.path.isdir(directory) and not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        raise UsageError(f"--checkpoint {directory} has no tokenizer.json: give the prompt as token ids with --ids")
    return BloomTokenizer.from_pretrained(directory)


def read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt text from TEXT, -f FILE or stdin ('-'); None with --ids. Checked before loading."""
    sources = [name for name, given in (("TEXT", args.text is not None), ("-f", args.file is not None),
                                        ("--ids", args.ids is not None)) if given]
    if len(sources) != 1:
        raise UsageError("give the prompt once: as TEXT, -f FILE (- for stdin) or --ids" +
                         (f" (got {' and '.join(sources)})" if sources else ""))
    if args.ids is not None:
        return None
    if args.file is not None or args.text == "-":
        return read_prompt_file(args.file if args.file is not None else "-")
    return args.text if args.no_escape else unescape(args.text)


# The most prompt text read from -f or stdin. The longest contexts models use are about a million
# tokens, some 4 MB of English text (BLOOM itself was trained on 2048 tokens); 16 MiB is four times
# that, and a NumPy forward over it would already take hours. Past it is a mistake (`-f /dev/zero`,
# a pipe that never ends), refused before memory runs out.
MAX_PROMPT_BYTES = 16 * 2**20


def read_prompt_file(path: str) -> str:
    """The prompt from a regular file (never a FIFO, a device or a directory) or stdin ('-'), of at
    most MAX_PROMPT_BYTES, as UTF-8."""
    from ..safe_read import open_regular

    flag = "- (stdin)" if path == "-" else f"-f {path}"
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_PROMPT_BYTES + 1)
        else:
            with open_regular(path, UsageError, MAX_PROMPT_BYTES) as f:
                raw = f.read(MAX_PROMPT_BYTES + 1)
    except UsageError as e:
        raise UsageError(f"{flag}: cannot read the prompt: {e}") from None
    except OSError as e:
        raise UsageError(f"{flag}: cannot read the prompt ({e.strerror or e})") from None
    if len(raw) > MAX_PROMPT_BYTES:
        raise UsageError(f"{flag}: the prompt is more than {MAX_PROMPT_BYTES:,} bytes (the limit on a prompt "
                         f"read from {'stdin' if path == '-' else 'a file'})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{flag}: cannot read the prompt (not UTF-8 text: {e})") from None


def unescape(text: str) -> str:
    """\\n, \\t, \\r and \\\\ in a command-line prompt, as llama.cpp's --escape reads them."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "ntr\\":
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def sampling_settings(args: argparse.Namespace) -> dict:
    """generate's keyword arguments from the flags, checked (naming the flag) before the model loads.
    --temp, --top-p, --top-k imply sampling (as llama.cpp); --temp 0 means greedy."""
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


class Timer:
    """Times the phases llama.cpp reports: load, prompt evaluation, and each generated token."""

    def __init__(self):
        self.marks: dict[str, float] = {"start": time.perf_counter()}
        self.steps: list[float] = []

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def summary(self, prompt_tokens: int, new_tokens: int, setup: str = "") -> str:
        """The llama.cpp-style line; `setup` (backend, storage, threads) ends it. A first run's
        kernel compilation (between "loaded" and "ready") is named there, not billed to prompt eval."""
        load = self.marks["loaded"] - self.marks["start"]
        ready = self.marks.get("ready", self.marks["loaded"])
        if ready - self.marks["loaded"] >= 1.0:  # a compile; loading cached kernels takes ~0.1 s
            setup += f", kernels compiled in {ready - self.marks['loaded']:.1f} s"
        line = f"[load {load:.2f} s"
        if self.steps:
            prompt = self.steps[0] - ready  # the prefill, plus choosing the first token
            rest = np.diff(self.steps)
            line += f" | prompt eval {prompt_tokens} tokens in {prompt:.3f} s ({prompt_tokens / max(prompt, 1e-9):.1f} " \
                    "tokens/s)"
            if rest.size:
                per = float(rest.mean())
                line += f" | eval {rest.size} tokens, {1000 * per:.1f} ms per token ({1 / max(per, 1e-9):.1f} tokens/s)"
        total = self.marks["done"] - ready
        n = new_tokens  # beam search streams nothing, so count the output, not the steps seen
        return line + f" | {n} tokens in {total:.2f} s: {n / max(total, 1e-9):.1f} tokens/s" + \
            (f" | {setup}]" if setup else "]")


def cmd_generate(args: argparse.Namespace) -> None:
    from ..heads import BloomForCausalLM

    settings = sampling_settings(args)
    text = read_prompt(args)
    directory = check_checkpoint(args.checkpoint)
    seed = args.seed
    if settings["do_sample"] and seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    timer = Timer()
    has_tokenizer = os.path.isfile(os.path.join(directory, "tokenizer.json")) or not os.path.isdir(directory)
    tok = _tokenizer(directory) if text is not None or has_tokenizer else None
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, storage=args.storage,
                                             threads=args.threads)
    if args.ids is not None:
        bad = [i for i in args.ids if not 0 <= i < model.config.vocab_size]
        if bad:
            raise UsageError(f"--ids: {bad[0]} is not a token id of this model (0..{model.config.vocab_size - 1})")
        prompt = np.array([args.ids], np.int64)
    else:
        prompt = tok(text, return_tensors="np")["input_ids"]
    timer.mark("loaded")
    if prompt.size == 0:
        raise UsageError("the prompt encodes to no tokens; give some text to continue")
    check_generation(model, directory, prompt, seed, tok, settings, beams=args.num_beams > 1)
    warm_up(model)
    timer.mark("ready")
    if settings["do_sample"]:
        print(f"seed: {seed}", file=sys.stderr)  # rerun with --seed to get the same text
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
    print(timer.summary(prompt.shape[1], out.shape[1] - prompt.shape[1], setup_line(model)), file=sys.stderr)


def setup_line(model) -> str:
    """What the speed depends on, for the timing line: "numba, bfloat16 weights, 2 threads"."""
    from ..threads import get_num_threads

    threads = get_num_threads()
    return f"{model.backend}, {model.storage} weights, {threads} thread{'s' if threads > 1 else ''}"


def warm_up(model) -> None:
    """Compile the Numba kernels before the clock starts (a first run: 8-17 s; later runs load them
    from Numba's cache in milliseconds) by running a tiny model of the same storage and layout: a
    9-token prefill (the BLAS path) and one cached decode step (the GEMV path). A terminal is told
    when this takes over a second, instead of a silence."""
    if model.backend != "numba":
        return
    import copy
    import threading

    from ..backends.numba_backend import GEMV_MAX_ROWS

    config = copy.deepcopy(model.config)
    config.vocab_size, config.hidden_size, config.n_head, config.n_layer = 16, 16, 2, 1
    config.pretraining_tp = min(config.pretraining_tp, 2)
    tiny = type(model)(config, backend="numba", storage=model.storage)
    for name, array in tiny.params.items():  # read-only (memory-mapped) weights compile separately
        array.setflags(write=model.params[name].flags.writeable and array.flags.writeable)
    notice = threading.Timer(1.0, lambda: print("compiling the kernels (first run only, ~10 s)...",
                                                file=sys.stderr, flush=True))
    if sys.stderr.isatty():
        notice.start()
    try:
        ids = np.zeros((1, GEMV_MAX_ROWS + 1), np.int64)  # [1, 9]
        out = tiny(ids, use_cache=True)
        tiny(ids[:, -1:], past_key_values=out.past_key_values)
    finally:
        notice.cancel()


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


class TokenPrinter:
    """Prints generated tokens as text as they come: decoded together, so a character split over
    several tokens prints whole; ids the tokenizer does not know (the model's vocab is larger) print
    as <id N> instead of aborting mid-line; without a tokenizer, ids are printed."""

    def __init__(self, tok):
        self.tok, self.pending, self.shown = tok, [], ""

    def add(self, token: int) -> None:
        if self.tok is None:
            print(f" {token}", end="", flush=True)
            return
        if token not in self.tok.id_to_token:
            self.flush()
            print(f"<id {token}>", end="", flush=True)
            return
        self.pending.append(token)
        text = self.tok.decode(self.pending, skip_special_tokens=True)
        if not text.endswith("\ufffd"):  # wait for the rest of a character split across tokens
            print(text[len(self.shown):], end="", flush=True)
            self.shown = text

    def flush(self) -> None:
        if self.tok is not None and self.pending:
            text = self.tok.decode(self.pending, skip_special_tokens=True)
            print(text[len(self.shown):], end="", flush=True)
        self.pending, self.shown = [], ""


def cmd_tokenize(args: argparse.Namespace) -> None:
    tok = _tokenizer(check_checkpoint(args.checkpoint, need_config=False))
    if args.explain:
        from ..explain.cli import tokenize_explain

        print(tokenize_explain(tok, args.text, args.json))
        return
    ids, offsets = tok.encode_with_offsets(args.text)
    rows = [{"position": i, "id": t, "token": tok.convert_ids_to_tokens(t), "start": s, "end": e,
             "text": args.text[s:e]} for i, (t, (s, e)) in enumerate(zip(ids, offsets))]
    if args.json:
        print(json.dumps({"input_ids": ids, "tokens": rows}, ensure_ascii=False, indent=2))
        return
    print(f"{'pos':>4} {'id':>7}  {'token':20} {'offsets':>11}  text")
    for r in rows:
        print(f"{r['position']:>4} {r['id']:>7}  {r['token']:20} {r['start']:>5}-{r['end']:<5}  {r['text']!r}")
    print(f"{len(ids)} tokens for {len(args.text)} characters")


# The files of a checkpoint that `init --force` replaces: a new config.json and weights go in, and the
# old model's tokenizer and generation settings go out with the old weights (random weights beside a
# trained tokenizer would look like a usable model). Weight files of another layout (shards, the index)
# are removed by the save itself (`weights.save_state_dict`). Nothing else in DIR is touched.
REPLACED_WITH_THE_MODEL = ("generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "added_tokens.json")


def model_files(directory: str) -> list[str]:
    """The files in `directory` that show it already holds a model (config, weights, tokenizer)."""
    try:
        names = os.listdir(directory)
    except OSError:  # absent, or not a directory (the save names the problem)
        return []
    return sorted(n for n in names if n in ("config.json",) + REPLACED_WITH_THE_MODEL or n.endswith(".safetensors")
                  or n == "model.safetensors.index.json")


def cmd_init(args: argparse.Namespace) -> None:
    from ..atomic import transaction
    from ..config import CONFIG_NAME
    from ..model import BloomModel
    from ..weights import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, SHARD_NAME, write_random_weights

    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    existing = model_files(args.directory)
    if existing and not args.force:
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise UsageError(f"{args.directory} already holds a model ({shown}); pass --force to replace it")
    sizes = dict(TINY, vocab_size=250880, **BLOOM_FAMILY[args.like]) if args.like else dict(TINY)
    sizes.update({k: getattr(args, k) for k in TINY if getattr(args, k) is not None})
    config = BloomConfig(**sizes)
    config.validate()
    config.architectures = ["BloomModel"]
    check_disk_space(args.directory, param_count(config) * (4 if args.dtype == "float32" else 2))
    with transaction(args.directory) as txn:  # config, weights and the stale files switch together
        # streamed: the random weights are drawn and written a few MB at a time (issue 24: the
        # whole model and its converted copy made `--like bloom-560m` peak at 5.6 GB)
        write_random_weights(txn.path(SAFE_WEIGHTS_NAME), BloomModel.param_shapes(config), args.dtype,
                             config.initializer_range, args.seed)
        for name in os.listdir(txn.directory):  # a sharded layout's files, as save_state_dict removes them
            if name == SAFE_WEIGHTS_INDEX_NAME or SHARD_NAME.match(name):
                txn.remove(name)
        txn.write_bytes(CONFIG_NAME, config.to_json_string().encode("utf-8"))
        for name in REPLACED_WITH_THE_MODEL:
            if name in existing:
                txn.remove(name)
    print(f"wrote a random BLOOM ({param_count(config):,} parameters) to {args.directory}"
          + (" (replacing the model there)" if existing else ""))


def check_disk_space(directory: str, nbytes: int) -> None:
    """Refuse, before writing, a file larger than the free space where `directory` is (or would be):
    streamed, init's weights take no memory, so the disk is what a huge --hidden-size exhausts."""
    where = os.path.abspath(directory)
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # cannot tell: the write itself reports a full disk
    if nbytes > free:
        raise UsageError(f"{directory}: the weights need {nbytes:,} bytes on disk, {free:,} are free there")


def checkpoint_of(args: argparse.Namespace) -> str:
    """DIR or --checkpoint DIR (not both); the embedded model when neither is given."""
    if args.directory is not None and args.checkpoint is not None:
        raise UsageError(f"give the checkpoint once: DIR ({args.directory}) or --checkpoint ({args.checkpoint})")
    given = args.checkpoint if args.checkpoint is not None else args.directory
    return EMBEDDED_CHECKPOINT if given is None else check_checkpoint(
        given, "--checkpoint" if args.checkpoint is not None else "DIR")


def cmd_info(args: argparse.Namespace) -> None:
    from ..int8_io import is_int8_checkpoint
    from ..model import BloomModel
    from ..pretrained import HEAD_TENSORS
    from ..safetensors_io import read_header
    from ..weights import check_state_dict, strip_base_prefix

    from ..hub import resolve

    directory = resolve(checkpoint_of(args))  # a hub name -> its snapshot in the HF cache
    config = BloomConfig.from_pretrained(directory)
    files = sorted(set(checkpoint_files(directory).values()))
    dtypes: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        for name, info in read_header(f)[0].items():
            dtypes[info.dtype] = dtypes.get(info.dtype, 0) + 1
            shapes[name] = tuple(info.shape)
    # A config.json that disagrees with the tensors (n_layer=10**9 over 2 layers' weights) is refused,
    # as from_pretrained refuses it: an error naming both (exit 2), not a summary of a model that is not there.
    check_sizes_against_tensors(config, shapes, directory)
    if not is_int8_checkpoint(directory):  # every base tensor's shape, as the loaders check them
        stored = {n: np.broadcast_to(np.int8(0), s) for n, s in strip_base_prefix(shapes).items()}  # no memory
        check_state_dict(stored, BloomModel.param_shapes(config), ignored=HEAD_TENSORS, where=directory)
    summary = {"directory": os.path.abspath(directory), "vocab_size": config.vocab_size,
               "hidden_size": config.hidden_size, "n_layer": config.n_layer, "n_head": config.n_head,
               "head_dim": config.head_dim, "layer_norm_epsilon": config.layer_norm_epsilon,
               "apply_residual_connection_post_layernorm": config.apply_residual_connection_post_layernorm,
               "pretraining_tp": config.pretraining_tp,
               "slow_but_exact": config.slow_but_exact, "parameters": param_count(config),
               "weight_files": [os.path.basename(f) for f in files],
               "weight_dtypes": {k: dtypes[k] for k in sorted(dtypes)},
               "bytes_on_disk": sum(os.path.getsize(f) for f in files),
               "tokenizer": os.path.isfile(os.path.join(directory, "tokenizer.json"))}
    notes = []
    if summary["tokenizer"]:
        tok = _tokenizer(directory)
        summary["tokenizer_tokens"] = len(tok)
        if len(tok) != config.vocab_size:
            notes.append(f"the tokenizer has {len(tok)} tokens, the model {config.vocab_size} rows: "
                         + (f"ids {len(tok)}..{config.vocab_size - 1} have no text (BLOOM pads its vocab so)"
                            if len(tok) < config.vocab_size else
                            f"tokenizer ids >= {config.vocab_size} cannot be fed to the model"))
    summary["notes"] = notes
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(map(len, summary))
        for key, value in summary.items():
            if key == "notes":
                continue
            shown = (", ".join(value) if isinstance(value, list) else
                     ", ".join(f"{k} x{v}" for k, v in value.items()) + " tensors" if isinstance(value, dict) else value)
            print(f"{key:<{width}}  {shown}")
        for note in notes:
            print(f"note: {note}")


def cmd_forward(args: argparse.Namespace) -> None:
    from ..model import BloomModel

    model = BloomModel.from_pretrained(checkpoint_of(args), backend=args.backend, storage=args.storage,
                                       threads=args.threads)
    big = [i for i in args.ids if not -2**63 <= i < 2**63]  # past int64: the model's own check names the rest
    if big:
        raise UsageError(f"--ids: {big[0]} is not a token id of this model (0..{model.config.vocab_size - 1})")
    hidden = model(np.array([args.ids])).last_hidden_state[0]  # [T, H]
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    print(f"last_hidden_state: shape {tuple(hidden.shape)}, mean {hidden.mean():.6f}, std {hidden.std():.6f}")
    for t, row in enumerate(hidden):
        print(f"  token {t} (id {args.ids[t]}): {row[:6]}{' ...' if row.size > 6 else ''}")


def cmd_golden(args: argparse.Namespace) -> int:
    from .. import golden
    from ..heads import BloomForCausalLM

    if args.golden_command == "tokenize":
        return _golden_tokenize(args)
    if args.golden_command == "compare" and (args.expected.endswith(".jsonl") or args.actual.endswith(".jsonl")):
        return _golden_compare_tokens(args)
    if args.golden_command == "dump":
        directory = check_checkpoint(args.checkpoint)  # a mistyped path says so, before any work
        ids, mask, text = _golden_inputs(args)
        given = [f for f in ("temperature", "top_k", "top_p", "seed") if getattr(args, f) is not None]
        if (args.sample or given) and (args.generate is None or not args.sample):
            raise UsageError(f"--{(given or ['sample'])[0].replace('_', '-')} is a sampling golden's: give "
                             "--generate N --sample")
        if args.generate is not None:
            return _golden_dump_generate(args, directory, ids, mask, text)
        if args.train or any(getattr(args, o) is not None for o in _TRAIN_OPTIONS):
            return _golden_dump_train(args, directory, ids, mask, text)
        model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, threads=args.threads,
                                                 storage=args.storage or "auto")  # auto: memory-mapped as on disk
        record = golden.dump(model, args.output, ids, mask, text=text, dtype=args.dtype)
        print(f"wrote {len(record)} tensors for {ids.shape[0]} x {ids.shape[1]} tokens to {args.output}")
        return 0
    for flag in ("atol", "rtol"):
        if getattr(args, flag) is not None:
            golden.check_tolerance(getattr(args, flag), "--" + flag)
    layers = golden.parse_layers(args.layers) if args.layers is not None else None
    golden.compile_globs(args.only, "--only")  # length and count bounded, before any file is read
    tolerances = golden.read_tolerances(args.tolerances) if args.tolerances is not None else None
    expected = golden.load(args.expected)
    actual = golden.live_run(expected, args.actual, args.backend) if os.path.isdir(args.actual) and not any(
        f.endswith(".npy") for f in os.listdir(args.actual)) else golden.load(args.actual)
    report = golden.compare(expected, actual, atol=args.atol, rtol=args.rtol, only=args.only, layers=layers,
                            skip_missing=args.skip_missing, logits_only=args.logits_only,
                            ignore_padding=args.ignore_padding, tolerances=tolerances,
                            scores_up_to_row_constant=args.scores_up_to_row_constant, port_dtype=args.port_dtype,
                            allow_unknown=args.allow_unknown)
    if args.plot:
        golden.plot_errors(report, args.plot)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(golden.format_report(report, failures_only=args.failures_only))
    return 0 if report.ok else 1


_TRAIN_OPTIONS = ("steps", "lr", "betas", "eps", "weight_decay")


def _golden_dump_generate(args: argparse.Namespace, directory: str, ids: np.ndarray, mask: np.ndarray,
                          text: str | None) -> int:
    from .. import golden_generate
    from ..heads import BloomForCausalLM

    if args.train or args.dtype != "float32":
        raise UsageError("--generate writes a float32 generation golden: leave out --train and --dtype")
    if not 1 <= args.generate <= 1000:
        raise UsageError(f"--generate must be from 1 to 1000, got {args.generate}")
    settings = {"temperature": 1.0 if args.temperature is None else args.temperature,
                "top_k": 50 if args.top_k is None else args.top_k, "top_p": 1.0 if args.top_p is None else args.top_p,
                "seed": 0 if args.seed is None else args.seed} if args.sample else {}
    if args.sample:
        golden_generate.check_sampling(**settings)  # before the model loads
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, threads=args.threads,
                                             storage=args.storage or "auto")
    record = golden_generate.dump_generate(model, args.output, ids, mask, steps=args.generate, text=text,
                                           sample=args.sample, **settings)
    print(f"wrote {len(record)} tensors ({args.generate} {'sampled' if args.sample else 'greedy'} steps) for "
          f"{ids.shape[0]} x {ids.shape[1]} "
          f"prompt tokens to {args.output}")
    return 0


def _golden_dump_train(args: argparse.Namespace, directory: str, ids: np.ndarray, mask: np.ndarray,
                       text: str | None) -> int:
    from .. import golden_train
    from ..heads import BloomForCausalLM

    given = [o for o in _TRAIN_OPTIONS if getattr(args, o) is not None]
    if not args.train:
        raise UsageError(f"--{given[0].replace('_', '-')} applies to a training golden: add --train")
    if args.dtype != "float32":
        raise UsageError("--train records float32 gradients: leave out --dtype")
    options = {o: tuple(getattr(args, o)) if o == "betas" else getattr(args, o) for o in given}
    golden_train.check_options(**options)  # before the model is loaded
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, threads=args.threads,
                                             storage="float32")  # the optimizer moves the weights in place
    record = golden_train.dump_train(model, args.output, ids, mask, text=text, **options)
    print(f"wrote {len(record)} tensors (forward, backward, {options.get('steps', 2)} AdamW steps) for "
          f"{ids.shape[0]} x {ids.shape[1]} tokens to {args.output}")
    return 0


def _golden_tokenize(args: argparse.Namespace) -> int:
    from .. import golden_tokens

    if not args.output.endswith(".jsonl"):
        raise UsageError(f"-o {args.output}: a tokenizer golden is named *.jsonl (compare tells it by the suffix)")
    texts = golden_tokens.read_texts(args.texts) if args.texts else []
    tok = _tokenizer(check_checkpoint(args.checkpoint, need_config=False))
    records = golden_tokens.dump_tokens(tok, args.output, texts, builtin=not args.no_builtin)
    print(f"wrote {len(records)} records ({sum(len(r['ids']) for r in records)} tokens) to {args.output}")
    return 0


# the tensor compare's options, which mean nothing for a tokenizer golden
_TENSOR_OPTIONS = ("atol", "rtol", "tolerances", "layers", "port_dtype", "plot")
_TENSOR_FLAGS = ("only", "logits_only", "allow_unknown", "ignore_padding", "scores_up_to_row_constant")


def _golden_compare_tokens(args: argparse.Namespace) -> int:
    from .. import golden_tokens

    if not (args.expected.endswith(".jsonl") and args.actual.endswith(".jsonl")):
        raise UsageError(f"a tokenizer golden is compared with a port's records: both files *.jsonl, got "
                         f"{args.expected} and {args.actual}")
    used = [o for o in _TENSOR_OPTIONS if getattr(args, o) is not None] + [o for o in _TENSOR_FLAGS if getattr(args, o)]
    if used:
        raise UsageError(f"--{used[0].replace('_', '-')} applies to tensor goldens, not to a tokenizer golden (.jsonl)")
    expected = golden_tokens.read_records(args.expected, golden=True)
    actual = golden_tokens.read_records(args.actual)
    report = golden_tokens.compare_tokens(expected, actual, skip_missing=args.skip_missing)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(golden_tokens.format_token_report(report, failures_only=args.failures_only))
    return 0 if report.ok else 1


def _golden_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str | None]:
    """ids [B, T] and mask [B, T] from --ids, --inputs JSON, or the --text(s), left-padded."""
    if args.ids:
        ids = np.array([args.ids])
        return ids, np.ones_like(ids), None
    if args.inputs:
        return _read_inputs_json(args.inputs) + (None,)
    tok = _tokenizer(args.checkpoint)
    rows = [tok(t)["input_ids"] for t in args.text]
    if any(len(r) == 0 for r in rows):
        raise MinibloomError("a --text encodes to no tokens")
    T = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = np.array([[pad] * (T - len(r)) + list(r) for r in rows], np.int64)  # [B, T], left padding
    mask = np.array([[0] * (T - len(r)) + [1] * len(r) for r in rows], np.int64)
    return ids, mask, args.text[0] if len(args.text) == 1 else json.dumps(args.text)


def _read_inputs_json(path: str) -> tuple[np.ndarray, np.ndarray]:
    from ..errors import InputError

    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(64 << 20))
        ids = np.array(data["input_ids"], dtype=np.int64)
        mask = np.array(data.get("attention_mask", np.ones_like(ids)), dtype=np.int64)
    except OSError as e:
        raise InputError(f"--inputs {path}: cannot read it: {e.strerror or e}") from None
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, AttributeError) as e:
        raise InputError(f"--inputs {path}: needs {{\"input_ids\": [[int]], \"attention_mask\": [[0|1]]}} "
                         f"with equal-length rows ({type(e).__name__}: {e})") from None
    if ids.ndim != 2 or ids.size == 0 or mask.shape != ids.shape or not np.isin(mask, (0, 1)).all():
        raise InputError(f"--inputs {path}: input_ids must be [B][T] (non-empty) and attention_mask the same "
                         f"shape of 0/1, got {ids.shape} and {mask.shape}")
    return ids, mask


COMMANDS = {"generate": cmd_generate, "tokenize": cmd_tokenize, "info": cmd_info, "forward": cmd_forward,
            "golden": cmd_golden, "init": cmd_init, "train": lambda args: _train(args),
            "explain": lambda args: _explain(args)}


def _explain(args: argparse.Namespace) -> None:
    from ..explain.cli import cmd_explain

    cmd_explain(args)


def _train(args: argparse.Namespace) -> int:
    from ..training.cli import cmd_train

    return cmd_train(args)


class _CtrlC:
    """Ctrl-C that is never lost. Python raises KeyboardInterrupt in whatever Python code runs next,
    and during Numba's first compile that is a callback from llvmlite's C code, where an exception
    is printed ("Exception ignored ...") and dropped: the command then ran to its end. So after a
    Ctrl-C, until `main` has caught it, the interrupt is raised again every quarter second, and
    the "ignored" report of a dropped one is silenced."""

    def __enter__(self) -> _CtrlC:
        self.pending, self.caught = threading.Event(), False
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:  # signal handlers belong to the main thread
            self.old_handler = signal.signal(signal.SIGINT, self._on_sigint)
            self.old_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()
        if self.installed:
            signal.signal(signal.SIGINT, self.old_handler)
            sys.unraisablehook = self.old_hook

    def done(self) -> None:
        """main has the KeyboardInterrupt (or finished): stop raising it."""
        self.caught = True
        self.pending.clear()

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.caught:
            return  # already on the way out with status 130
        if not self.pending.is_set():
            self.pending.set()
            threading.Thread(target=self._repeat, daemon=True).start()
        raise KeyboardInterrupt

    def _repeat(self) -> None:
        while True:
            time.sleep(0.25)
            if not self.pending.is_set():
                return
            _thread.interrupt_main(signal.SIGINT)  # runs _on_sigint in the main thread, as a real Ctrl-C

    def _unraisable(self, info: object) -> None:
        if not (self.pending.is_set() and isinstance(info.exc_value, KeyboardInterrupt)):
            self.old_hook(info)


_CTRL_C = _CtrlC()


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done, 1 failed (a write error, an unexpected error; one line,
    no traceback unless MINIBLOOM_DEBUG is set), 2 bad input (a MinibloomError), 130 Ctrl-C."""
    with _CTRL_C:
        return _run(argv)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning (converting weights while loading, a new head) as one line, not the source line too."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    _fail(0, f"warning: {first}")


def _run(argv: list[str] | None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run_command(argv)


def _run_command(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        status = COMMANDS[args.command](args) or 0
        sys.stdout.flush()  # a full disk is reported here, not as noise at interpreter exit
        return status
    except MinibloomError as e:
        return _fail(2, f"error: {e}")
    except BrokenPipeError:  # `minibloom ... | head`: the reader left; stop quietly, as Unix tools do
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        _CTRL_C.done()
        return _fail(130, "interrupted")
    except OSError as e:  # writing the output failed: `> /dev/full`, a closed terminal
        _silence_stdout()
        return _fail(1, f"error: cannot write the output: {e.strerror or e}")
    except Exception as e:  # noqa: BLE001 -- a bug: one line, the traceback on request
        if os.environ.get("MINIBLOOM_DEBUG"):
            raise
        return _fail(1, f"internal error: {type(e).__name__}: {e} (MINIBLOOM_DEBUG=1 shows the traceback)")


def _fail(status: int, message: str) -> int:
    try:
        print(f"minibloom: {message}".encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
    except (OSError, ValueError):
        pass
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so what is still buffered cannot fail again at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
