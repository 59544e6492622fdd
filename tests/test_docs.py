"""The docs run: every Python block in README.md and docs/*.md executes, every referenced image
exists and is one the figure script draws, and docs/api.md is what docs/make_api.py writes now."""

from __future__ import annotations

import ast
import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]


def python_blocks(page: str) -> list[str]:
    with open(page, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=os.path.basename)
def test_python_blocks_run(page, tmp_path):
    """A page's blocks run in order in one interpreter, as a reader would paste them."""
    code = "\n".join(python_blocks(page))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, f"{os.path.basename(page)}:\n{done.stderr[-3000:]}"


def figure_names() -> tuple[str, ...]:
    """FIGURES of docs/make_figures.py, read without importing matplotlib."""
    tree = ast.parse(open(os.path.join(ROOT, "docs", "make_figures.py")).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "FIGURES":
            return ast.literal_eval(node.value)
    raise AssertionError("docs/make_figures.py has no FIGURES")


def test_every_referenced_image_exists_and_is_drawn_by_the_docs_script():
    referenced = set()
    for page in PAGES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", open(page, encoding="utf-8").read()):
            path = os.path.normpath(os.path.join(os.path.dirname(page), target))
            assert os.path.isfile(path), f"{page} shows {target}, which does not exist"
            referenced.add(os.path.basename(path))
    assert referenced and referenced <= set(figure_names())


def test_api_page_is_up_to_date():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    try:
        import make_api
    finally:
        sys.path.pop(0)
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        assert f.read() == make_api.render(), "run `python docs/make_api.py`"
    import minibloom

    text = make_api.render()
    assert all(f"`minibloom.{name}" in text for name in minibloom.__all__ if name != "__version__")


def test_api_page_shows_inherited_methods_and_full_signatures():
    """Generated with griffe: inherited from_pretrained / save_pretrained on every model class, generate's
    and the tokenizer's arguments, batch_decode, train_bpe."""
    text = open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8").read()
    for cls in ("BloomModel", "BloomForCausalLM", "BloomForSequenceClassification", "BloomForTokenClassification",
                "BloomForQuestionAnswering"):
        assert f"#### `{cls}.from_pretrained(directory" in text and f"#### `{cls}.save_pretrained(directory" in text
    for needle in ("#### `BloomTokenizer.__call__(text", "return_tensors: str | None = None",
                   "#### `BloomTokenizer.batch_decode(sequences", "### `minibloom.tokenizer.train.train_bpe(texts",
                   "### `minibloom.generation.generate(model, input_ids", "no_repeat_ngram_size",
                   "(from `PreTrainedBloom`)"):
        assert needle in text, needle
