"""Text generation: greedy decoding, sampling and beam search with a preallocated KV cache.

Read in this order:

    config.py        GenerationConfig: transformers' settings and defaults, generation_config.json, checks
    settings.py      which settings one call uses (the model's, the caller's, the keyword arguments)
    plan.py          every check before the first array (`plan`), the ids, mask and final length
    decode.py        the loop: prefill, then process scores -> pick a token -> one cached step;
                     `generate` and `stream`
    beam_search.py   transformers' vectorised beam search
    stop_strings.py  transformers' StopStringCriteria
    step_outputs.py  what each step keeps (hidden states, attentions)
    scores.py        compute_transition_scores
    logits_process.py  the score processors: repetition penalty, temperature, top-k, top-p, ...
    streamers.py     TextStreamer, TextIteratorStreamer

The checks of single arguments are in `minibloom.validation`.
"""

from __future__ import annotations

from .config import GENERATION_CONFIG_NAME, UNSUPPORTED_FIELDS, GenerationConfig
from .decode import decode_steps, generate, sample, stream
from .plan import plan
from .scores import compute_transition_scores
from .settings import make_config
from .stop_strings import StopStrings

__all__ = ["GENERATION_CONFIG_NAME", "UNSUPPORTED_FIELDS", "GenerationConfig", "StopStrings",
           "compute_transition_scores", "decode_steps", "generate", "make_config", "plan", "sample",
           "stream"]
