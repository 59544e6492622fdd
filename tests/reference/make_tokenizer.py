"""Train the BLOOM-format test tokenizer with HF tokenizers itself (needs the `reference` extra).

    python tests/reference/make_tokenizer.py

BLOOM's real tokenizer.json (250,680 tokens) cannot be downloaded here, so the tests use one made
the same way: HF tokenizers' BpeTrainer with exactly BLOOM's pipeline (no normalizer; Split by
BLOOM's regex, Isolated; ByteLevel without prefix space or regex; ByteLevel post-processor and
decoder; `<unk> <s> </s> <pad>` as ids 0-3; all 256 bytes in the alphabet), trained on multilingual
text found on every machine of this project:

- glibc's locale definitions (/usr/share/i18n/locales): month and day names, currency and address
  formats in scores of scripts, written as <Uxxxx> escapes. Only files that carry glibc's statement
  "The Free Software Foundation does not claim any copyright interest in the locale data" are used;
  their strings are committed as tests/data/tokenizer/glibc-locale-strings.txt.xz.
- the gettext translations of the installed programs (/usr/share/locale/*/LC_MESSAGES/*.mo), up to
  TRANSLATION_CAP bytes per language (180+ languages), used for training only, never committed.

Writes into tests/data/tokenizer/:
    tokenizer.json, tokenizer_config.json   vocab 8192, the tokenizer every tokenizer test uses
    hf-encodings.json                       HF's ids, offsets and decodes of FIXED_TEXTS (and of the
                                            first glibc strings) with that tokenizer, in three variants
    separators.json                         the code points HF's BLOOM split regex treats as separators
    hf-trainer.json                         HF's merges on the committed glibc strings alone
                                            (vocab TRAINER_VOCAB), the oracle for minibloom's trainer
"""

from __future__ import annotations

import gettext
import glob
import json
import lzma
import os
import re

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "tokenizer")
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
VOCAB = 8192
TRAINER_VOCAB = 1024
TRANSLATION_CAP = 24_000
NO_COPYRIGHT = "does not claim any copyright interest"


def glibc_strings(root: str = "/usr/share/i18n/locales") -> list[str]:
    """Every quoted string of the no-copyright locale files, <Uxxxx> escapes decoded, in file order."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "*"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if NO_COPYRIGHT not in " ".join(text.split()):
            continue
        for s in re.findall(r'"((?:<U[0-9A-Fa-f]{4,8}>|[^"<\n])*)"', text):
            s = re.sub(r"<U([0-9A-Fa-f]{4,8})>", lambda m: chr(int(m.group(1), 16)), s)
            if s.strip():
                out.append(s)
    return out


def translations(root: str = "/usr/share/locale", cap: int = TRANSLATION_CAP) -> list[str]:
    """msgstr texts of the installed .mo catalogs, up to `cap` UTF-8 bytes per language."""
    out, used = [], {}
    for path in sorted(glob.glob(os.path.join(root, "*", "LC_MESSAGES", "*.mo"))):
        lang = path.split(os.sep)[-3]
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:  # a few catalogs are malformed; skip them
            continue
        for key in sorted(catalog, key=str):
            value = catalog[key]
            if key == "" or not isinstance(value, str) or not value.strip():
                continue
            if used.get(lang, 0) + len(value.encode()) > cap:
                break
            used[lang] = used.get(lang, 0) + len(value.encode())
            out.append(value)
    return out


def bloom_pipeline_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(" ?[^(\\s|[.,!?…。，、।۔،])]+"), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def train(lines: list[str], vocab_size: int) -> Tokenizer:
    tok = bloom_pipeline_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=[AddedToken(s, special=True, normalized=False) for s in SPECIALS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return tok


FIXED_TEXTS = [
    "", "Hello world", " Hello world", " Hello  world", "a.b,c (x)|y  z", "The quick brown fox</s>",
    "jumps over the lazy dog</s>", "!", "<s>hi</s> <pad>x<unk>", "<s<s>>", "x\x1cy\x1dz\x1e\x1f",
    "tab\there\nnew line\r\n", "  leading and trailing  ", "日本語のテキスト。次の文、そして",
    "नमस्ते दुनिया। यह एक परीक्षण है।", "مرحبا بالعالم، هذا اختبار۔", "Ελληνικά κείμενα… και άλλα",
    "emoji 👍🏽 and 🇫🇷 flags", "e\u0301 combining", "\u00a0nbsp\u3000ideographic space", "(((...)))|||",
    "a" * 300, "\U0001F600" * 5, "\ufeffBOM", "ＦＵＬＬＷＩＤＴＨ，ｗｉｄｔｈ",
]
VARIANTS = {"bloom": {}, "add_prefix_space": {"add_prefix_space": True},
            "trim_offsets": {"trim_offsets": True}}


def variant_json(tokenizer_json: str, variant: str) -> str:
    """BLOOM's pipeline with one switch changed, as transformers would change it."""
    data = json.loads(tokenizer_json)
    if variant == "add_prefix_space":  # BloomTokenizerFast(add_prefix_space=True) patches the ByteLevel steps
        data["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = True
    if variant == "trim_offsets":
        data["post_processor"]["trim_offsets"] = True
    return json.dumps(data)


def hf_encodings(tokenizer_json: str, texts: list[str]) -> dict:
    out = {}
    for variant in VARIANTS:
        tok = Tokenizer.from_str(variant_json(tokenizer_json, variant))
        encs = tok.encode_batch(texts)
        out[variant] = [{"text": t, "ids": e.ids, "offsets": [list(o) for o in e.offsets],
                         "decoded": tok.decode(e.ids, skip_special_tokens=False)} for t, e in zip(texts, encs)]
    return out


def separators() -> list[int]:
    """Code points c for which HF's pre-tokenizer cuts "a" + c + "a" (so c is not a word character)."""
    pre = bloom_pipeline_tokenizer().pre_tokenizer
    return [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF
            and len(pre.pre_tokenize_str("a" + chr(cp) + "a")) != 1]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    strings = glibc_strings()
    with lzma.open(os.path.join(OUT, "glibc-locale-strings.txt.xz"), "wt", encoding="utf-8", preset=9) as f:
        f.write("\n".join(strings))
    corpus = strings + translations()
    print(f"corpus: {len(corpus)} lines, {sum(len(s.encode()) for s in corpus) / 1e6:.2f} MB")
    tok = train(corpus, VOCAB)
    tok.save(os.path.join(OUT, "tokenizer.json"), pretty=False)
    with open(os.path.join(OUT, "hf-encodings.json"), "w") as f:
        json.dump(hf_encodings(tok.to_str(), FIXED_TEXTS + strings[:300]), f, ensure_ascii=False)
    with open(os.path.join(OUT, "separators.json"), "w") as f:
        json.dump(separators(), f)
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BloomTokenizerFast", "padding_side": "left", "add_prefix_space": False,
                   "clean_up_tokenization_spaces": False, "unk_token": "<unk>", "bos_token": "<s>",
                   "eos_token": "</s>", "pad_token": "<pad>"}, f, indent=2)
    small = json.loads(train(strings, TRAINER_VOCAB).to_str())
    with open(os.path.join(OUT, "hf-trainer.json"), "w") as f:
        json.dump({"vocab_size": TRAINER_VOCAB, "corpus": "glibc-locale-strings.txt.xz",
                   "vocab": small["model"]["vocab"], "merges": small["model"]["merges"]}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
