"""``strassen-hw generate-text``: sample text from a frozen character language model.

The model (:class:`strassen_hw.lstm.FrozenLM`) runs in the exact integer reference. The prime
is read first, one character per step from the initial state; then each next character is drawn
from the softmax of the integer logits times :func:`~strassen_hw.lstm.logit_step`, divided by
the temperature, with ``numpy.random.default_rng(seed)``: one ``rng.random()`` per character,
the first index whose cumulative probability exceeds it (temperature 0: the largest logit, the
first on ties). The logits are integers, so the text depends only on the file, the prime, the
temperature and the seed.
"""

import argparse

import numpy as np

from . import lstm as frozen_lstm
from .frozen import FrozenError

__all__ = ["sample", "add_command"]

#: Most characters one call generates.
MAX_CHARS = 100_000


def _encode(lm, prime):
    if not lm.alphabet:
        raise FrozenError(f"{lm.name}: the file has no 'alphabet', so text cannot be encoded")
    index = {ch: k for k, ch in enumerate(lm.alphabet)}
    bad = [ch for ch in prime if ch not in index]
    if bad:
        raise FrozenError(f"the prime holds {bad[0]!r}, which is not in the model's alphabet; "
                          "use only its characters")
    return [index[ch] for ch in prime]


def _pick(logits, scale, temperature, rng):
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) * (scale / temperature)
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))


def sample(lm, prime, chars, temperature=1.0, seed=0):
    """The prime followed by ``chars`` sampled characters (a string)."""
    if not prime:
        raise FrozenError("the prime is empty; give at least one character")
    codes = _encode(lm, prime)
    rng = np.random.default_rng(seed)
    scale = frozen_lstm.logit_step(lm)
    logits, state = frozen_lstm.lm_forward(lm, np.array([codes]), return_state=True)
    out = list(codes)
    for _ in range(chars):
        out.append(_pick(logits[0, -1], scale, temperature, rng))
        logits, state = frozen_lstm.lm_forward(lm, np.array([[out[-1]]]), state,
                                               return_state=True)
    return "".join(lm.alphabet[k] for k in out)


def _temperature(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value}: must be 0..100 (0: always the most "
                                         "likely character)")
    return value


def _count(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= MAX_CHARS:
        raise argparse.ArgumentTypeError(f"{value}: must be 0..{MAX_CHARS}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 1 << 63:
        raise argparse.ArgumentTypeError(f"{value}: must be 0..2^63-1")
    return value


def cmd_generate_text(args):
    lm = frozen_lstm.load(args.network)
    print(sample(lm, args.prime, args.chars, args.temperature, args.seed))
    return 0


def add_command(sub):
    """Register ``generate-text`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("generate-text", help="sample text from a frozen LSTM language model "
                                             "(exact integer reference)")
    p.add_argument("network", metavar="NET", help="a language-model file "
                                                  "(strassen_hw.lstm.save)")
    p.add_argument("--prime", default="ROMEO:", help="text to start from (default 'ROMEO:')")
    p.add_argument("--chars", type=_count, default=400, metavar="N",
                   help="characters to sample after the prime (default 400)")
    p.add_argument("--temperature", type=_temperature, default=1.0, metavar="T",
                   help="softmax temperature (default 1; 0: the most likely character)")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    p.set_defaults(func=cmd_generate_text)
