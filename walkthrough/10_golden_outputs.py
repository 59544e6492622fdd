"""10 - Golden outputs for a port (about 1 s).

Record every intermediate of a forward pass; compare another run with it; the first tensor that
differs names the op to look at. Here we "break" one op and let compare find it.
"""

import os
import tempfile

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer, golden

lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
ids = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)("Once more unto the breach", return_tensors="np")["input_ids"]
path = os.path.join(tempfile.mkdtemp(), "golden.safetensors")
record = golden.dump(lm, path, ids)
print(len(record), "tensors, e.g.", list(record)[2:9])

expected = golden.load(path)
ported = golden.live_run(expected, EMBEDDED_CHECKPOINT, backend="numba")  # another implementation
assert golden.compare(expected, ported).ok
ported["h.2.mlp.gelu"] = ported["h.2.mlp.gelu"] * np.float32(1.001)  # a port with a slightly wrong GELU
report = golden.compare(expected, ported)
print("the numba backend agrees with the golden in all", len(expected.tensors),
      "tensors; now a deliberately broken port (layer 2's GELU times 1.001):")
print("  " + golden.format_report(report).splitlines()[-1])
first = report.first_divergence
print(f"this FAIL is the deliberate one, as expected: compare names {first.name}, the op we broke, and the "
      f"worst element there is off by {first.headroom:.0f} times the allowed difference (headroom > 1 fails)")
assert first.name == "h.2.mlp.gelu"
