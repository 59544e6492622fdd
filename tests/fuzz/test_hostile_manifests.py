"""A read never writes, and a save follows only its own manifests (docs/testing.md, "Saving").

A checkpoint directory from an archive, a git clone or a shared drive may carry a
`.minibloom-save-*/COMMIT` that minibloom did not write: names outside the directory (absolute,
`..`, `/`), symlinks in the staging directory or as the staging directory, huge lists, other JSON,
no JSON, a COMMIT that is not a regular file. For each: every loader refuses it with a
CheckpointError naming it and leaves every file inside and outside the directory byte-identical
(a sentinel tree beside it is snapshotted), and a save refuses it the same way or completes without
touching anything outside the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import minibloom.atomic as atomic
from minibloom import BloomConfig, BloomForCausalLM, BloomModel, BloomTokenizer, CheckpointError
from tests.fuzz.fuzz_utils import json_values
from tests.tokenizer_utils import load_json

TINY = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
FORMAT = atomic.MANIFEST_FORMAT
MARKER = atomic.STAGING_MARKER
TOKENIZER = load_json("tokenizer.json")
SMALL_VOCAB = {t: i for t, i in TOKENIZER["model"]["vocab"].items() if i < 300}
SMALL_TOKENIZER = {**TOKENIZER, "model": {**TOKENIZER["model"], "vocab": SMALL_VOCAB, "merges": [
    m for m in TOKENIZER["model"]["merges"][:150] if all(p in SMALL_VOCAB for p in (*m, "".join(m)))]}}
LOADERS = {"BloomModel": BloomModel.from_pretrained, "BloomForCausalLM": BloomForCausalLM.from_pretrained,
           "BloomTokenizer": BloomTokenizer.from_pretrained}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One tiny checkpoint (config, weights, generation config, a small tokenizer), saved once."""
    path = tmp_path_factory.mktemp("template") / "ckpt"
    BloomForCausalLM(TINY).save_pretrained(path)
    (path / "tokenizer.json").write_text(json.dumps(SMALL_TOKENIZER))
    return path


def snapshot(root: str) -> dict[str, tuple]:
    """Every entry under `root`, symlinks not followed: a file's bytes, a link's target, a directory's listing."""
    out = {}
    for top, dirs, files in os.walk(root):
        out[os.path.relpath(top, root)] = ("dir", sorted(dirs + files))
        for name in dirs + files:
            path = os.path.join(top, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                out[os.path.relpath(path, root)] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                with open(path, "rb") as f:
                    out[os.path.relpath(path, root)] = ("file", f.read())
            elif not stat.S_ISDIR(mode):
                out[os.path.relpath(path, root)] = ("other", stat.S_IFMT(mode))
    return out


def sentinels(root: str) -> None:
    """Files beside the checkpoint that a hostile manifest may aim at."""
    os.makedirs(os.path.join(root, "outside", "sub"))
    os.makedirs(os.path.join(root, "outside", "evil"))
    for name, text in (("victim.txt", "victim"), ("outside/a.txt", "a"), ("outside/sub/b.txt", "b"),
                       ("outside/evil/x", "outside x"), ("outside/evil/config.json", "{}")):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)


def stage(ckpt: str, name: str = "evil1234", marker: bool = True) -> str:
    staging = os.path.join(ckpt, atomic.STAGING_PREFIX + name)
    os.mkdir(staging)
    if marker:
        open(os.path.join(staging, MARKER), "wb").close()
    return staging


def commit(staging: str, manifest) -> None:
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    with open(os.path.join(staging, atomic.COMMIT_NAME), "wb") as f:
        f.write(data)


def bad_names(root: str) -> list:
    return [os.path.join(root, "victim.txt"), os.path.join(root, "outside"), os.path.join(root, "outside", "a.txt"),
            "../victim.txt", "../outside/a.txt", "x/../../victim.txt", "../outside", "sub/x", ".", "..", "",
            "COMMIT", MARKER, "a\x00b", atomic.STAGING_PREFIX + "x", None, 7, ["config.json"], {"a": 1}]


GOOD_NAMES = ["config.json", "notes.txt", "model.safetensors"]


@st.composite
def hostile_cases(draw):
    """A function that plants one hostile save in `ckpt` (beside the sentinels under `root`) and
    returns the strings one of which the refusal must name."""
    kind = draw(st.sampled_from(["names", "staged symlink", "symlinked staging", "staging file", "huge list",
                                 "other JSON", "not JSON", "COMMIT not regular", "too large"]))
    event(kind)  # pytest --hypothesis-show-statistics: how often each kind ran
    if kind == "names":  # our format and marker, but a name that is not a plain file name of the directory
        picks = draw(st.lists(st.integers(0, 18), min_size=1, max_size=3))
        goods = draw(st.lists(st.sampled_from(GOOD_NAMES), max_size=2, unique=True))
        where = draw(st.sampled_from(["install", "remove"]))

        def plant(root, ckpt):
            bads = [bad_names(root)[i] for i in picks]
            staging = stage(ckpt)
            for name in goods:
                with open(os.path.join(staging, name), "w") as f:
                    f.write("staged")
            commit(staging, {"format": FORMAT, "install": goods + bads if where == "install" else goods,
                             "remove": bads if where == "remove" else []})
            with open(os.path.join(ckpt, "x"), "w") as f:  # so that x/../../victim.txt resolves
                f.write("x")
            return [repr(b)[:20] for b in bads]
        return plant
    if kind == "staged symlink":  # a staged file that is a symlink to a file outside
        target = draw(st.sampled_from(["victim.txt", "outside/a.txt", "outside/evil/config.json"]))
        name = draw(st.sampled_from(["config.json", "tokenizer.json", "model.safetensors"]))

        def plant(root, ckpt):
            staging = stage(ckpt)
            os.symlink(os.path.join(root, target), os.path.join(staging, name))
            commit(staging, {"format": FORMAT, "install": [name], "remove": []})
            return [name]
        return plant
    if kind == "symlinked staging":  # the staging directory itself is a symlink to a directory outside

        def plant(root, ckpt):
            evil = os.path.join(root, "outside", "evil")
            open(os.path.join(evil, MARKER), "wb").close()
            commit(evil, {"format": FORMAT, "install": ["x", "config.json"], "remove": []})
            os.symlink(evil, os.path.join(ckpt, atomic.STAGING_PREFIX + "evil1234"))
            return [atomic.STAGING_PREFIX + "evil1234"]
        return plant
    if kind == "staging file":  # a file (or a symlink to one) where a staging directory would be
        link = draw(st.booleans())

        def plant(root, ckpt):
            path = os.path.join(ckpt, atomic.STAGING_PREFIX + "evil1234")
            if link:
                os.symlink(os.path.join(root, "victim.txt"), path)
            else:
                with open(path, "w") as f:
                    json.dump({"format": FORMAT, "install": [], "remove": ["config.json"]}, f)
            return [atomic.STAGING_PREFIX + "evil1234"]
        return plant
    if kind == "huge list":
        n = draw(st.sampled_from([10_001, 50_000]))
        where = draw(st.sampled_from(["install", "remove"]))

        def plant(root, ckpt):
            staging = stage(ckpt)
            names = [f"f{i}.json" for i in range(n)]
            commit(staging, {"format": FORMAT, "install": names if where == "install" else [],
                             "remove": names if where == "remove" else []})
            return [atomic.STAGING_PREFIX + "evil1234"]
        return plant
    if kind == "other JSON":
        doc = draw(st.one_of(json_values, st.sampled_from([
            {"install": [], "remove": ["../victim.txt"]},  # an older format, no marker
            {"format": FORMAT, "install": [], "remove": [], "extra": 1},
            {"format": FORMAT, "install": []},
            {"format": "minibloom-save/2", "install": [], "remove": ["config.json"]},
            {"format": FORMAT, "install": "config.json", "remove": []},
            {"format": FORMAT, "install": ["config.json", "config.json"], "remove": []},
            {"format": FORMAT, "install": ["config.json"], "remove": ["config.json"]}])))
        marker = draw(st.booleans())

        def plant(root, ckpt):
            staging = stage(ckpt, marker=marker)
            if isinstance(doc, dict) and "install" in doc and isinstance(doc["install"], list):
                with open(os.path.join(staging, "config.json"), "w") as f:
                    f.write("{}")
            commit(staging, doc)
            return [atomic.STAGING_PREFIX + "evil1234"]
        return plant
    if kind == "not JSON":
        raw = draw(st.one_of(st.binary(max_size=64), st.sampled_from([b"\xff\xfe{}", b"{", b"", b"\x00" * 10])))

        def plant(root, ckpt):
            commit(stage(ckpt), raw)
            return [atomic.STAGING_PREFIX + "evil1234"]
        return plant
    if kind == "COMMIT not regular":
        what = draw(st.sampled_from(["dir", "fifo", "/dev/zero", "link to a manifest outside"]))

        def plant(root, ckpt):
            staging = stage(ckpt)
            path = os.path.join(staging, atomic.COMMIT_NAME)
            if what == "dir":
                os.mkdir(path)
            elif what == "fifo":
                os.mkfifo(path)
            elif what == "/dev/zero":
                os.symlink("/dev/zero", path)
            else:
                outside = os.path.join(root, "outside", "manifest.json")
                with open(outside, "w") as f:
                    json.dump({"format": FORMAT, "install": [], "remove": ["config.json"]}, f)
                os.symlink(outside, path)
            return [atomic.COMMIT_NAME]
        return plant
    pad = draw(st.sampled_from([2**20, 3 * 2**20]))  # "too large": a valid manifest padded past the cap

    def plant(root, ckpt):
        staging = stage(ckpt)
        commit(staging, b" " * pad + json.dumps({"format": FORMAT, "install": [], "remove": ["config.json"]}).encode())
        return [atomic.COMMIT_NAME]
    return plant


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plant=hostile_cases(), save=st.sampled_from(["model", "tokenizer"]))
def test_hostile_manifests_are_refused_and_never_followed(template, plant, save):
    with tempfile.TemporaryDirectory() as root:
        ckpt = os.path.join(root, "ckpt")
        shutil.copytree(template, ckpt)
        sentinels(root)
        needles = plant(root, ckpt)
        before = snapshot(root)
        for name, load in LOADERS.items():
            with pytest.raises(CheckpointError) as e:
                load(ckpt)
            assert ckpt in str(e.value) and any(n in str(e.value) for n in needles), (name, str(e.value))
            assert snapshot(root) == before, f"{name}.from_pretrained changed files"
        try:
            if save == "model":
                BloomForCausalLM(TINY, seed=1).save_pretrained(ckpt)
            else:
                BloomTokenizer(SMALL_TOKENIZER).save(ckpt)
        except CheckpointError as e:
            assert ckpt in str(e) and any(n in str(e) for n in needles), str(e)
            assert snapshot(root) == before, "a refused save changed files"
        after = snapshot(root)
        outside = {k: v for k, v in before.items() if k != "ckpt" and not k.startswith("ckpt" + os.sep)}
        assert {k: v for k, v in after.items() if k in outside} == outside, "a save touched files outside"


def test_a_read_only_checkpoint_with_a_committed_unapplied_save_loads_the_new_one_without_writing(
        tmp_path, monkeypatch):
    """A save killed during its apply step (after its commit) leaves new files in staging: loaders
    read the new checkpoint through its manifest, on a read-only directory, writing nothing; the
    next save finishes it."""
    ckpt = tmp_path / "ckpt"
    old = BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), seed=1)
    old.save_pretrained(ckpt, max_shard_size="200B")
    BloomTokenizer(SMALL_TOKENIZER).save(ckpt)
    new = BloomForCausalLM(BloomConfig(vocab_size=24, hidden_size=8, n_head=2, n_layer=2), seed=2)
    new.generation_config = new.generation_config.update(max_new_tokens=7)
    real_replace, renames = os.replace, []

    def replace_then_die(src, dst):  # install the weights, then "die" (as a kill would) before the rest
        if os.path.basename(os.path.dirname(src)).startswith(atomic.STAGING_PREFIX) and \
                os.path.dirname(dst) != os.path.dirname(src):  # out of staging: the apply step
            if renames:
                raise KeyboardInterrupt
            renames.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(ckpt)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    staged = [n for n in os.listdir(ckpt) if n.startswith(atomic.STAGING_PREFIX)]
    assert len(staged) == 1 and "config.json" in os.listdir(ckpt / staged[0])  # committed, half applied
    for path in (ckpt / staged[0], ckpt):
        path.chmod(0o555)
    before = snapshot(str(tmp_path))

    def wrote(*args, **kwargs):
        raise AssertionError(f"a loader wrote: {args}")

    with monkeypatch.context() as m:  # as root, permissions are not enforced: trap every way to write
        for name in ("replace", "rename", "remove", "unlink", "rmdir", "mkdir", "makedirs"):
            m.setattr(os, name, wrote)
        m.setattr(shutil, "rmtree", wrote)
        loaded = BloomForCausalLM.from_pretrained(ckpt)
        base = BloomModel.from_pretrained(ckpt)
        tok = BloomTokenizer.from_pretrained(ckpt)
    assert snapshot(str(tmp_path)) == before
    assert loaded.config.n_layer == 2 and all(np.array_equal(loaded.params[k], v) for k, v in new.params.items())
    assert loaded.generation_config.max_new_tokens == 7  # from the same save as the weights
    assert base.config.n_layer == 2 and tok.padding_side == "right"
    for path in (ckpt, ckpt / staged[0]):
        path.chmod(0o755)
    new.save_pretrained(ckpt)  # the next save finishes the interrupted one, then writes its own
    assert sorted(os.listdir(ckpt)) == ["config.json", "generation_config.json", "model.safetensors",
                                        "tokenizer.json", "tokenizer_config.json"]
