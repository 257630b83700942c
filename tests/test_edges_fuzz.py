"""Property-based tests of the loader, the reference and ``strassen-hw reference``
(hypothesis, derandomized and bounded): random valid networks round-trip and compute exactly;
random mutations of valid files and .npy inputs are either accepted and computed exactly or
refused with one line, exit status 2, no traceback, and no output file created or changed.

The judge (rules, exact evaluation in Python integers) is ``edge_fuzz``, written from
docs/frozen-format.md without calling the package. ``benchmarks/fuzz_edges.py`` runs longer."""

import json
import tempfile

import numpy as np
from edge_fuzz import evaluate, random_doc, random_rows, run_case
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis import given

from strassen_hw import frozen
from strassen_hw.reference import forward

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)


@FAST
@given(st.randoms(use_true_random=False))
def test_valid_networks_round_trip(rng):
    doc = random_doc(rng)
    net = frozen.from_json(doc)
    text = frozen.dumps(net)
    assert json.loads(text) == doc
    with tempfile.TemporaryDirectory() as tmp:
        frozen.save(net, f"{tmp}/a.json")
        assert frozen.dumps(frozen.load(f"{tmp}/a.json")) == text


@FAST
@given(st.randoms(use_true_random=False))
def test_reference_equals_python_integers(rng):
    doc = random_doc(rng)
    rows = random_rows(rng, doc)
    net = frozen.from_json(doc)
    want = evaluate(doc, rows)
    assert forward(net, np.array(rows, dtype=np.int64)).tolist() == want
    assert forward(net, rows).tolist() == want                   # Python integers
    if not doc["input"]["signed"]:
        assert forward(net, np.array(rows, dtype=np.uint64)).tolist() == want


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.randoms(use_true_random=False))
def test_cli_accepts_exactly_or_refuses_in_one_line(rng):
    with tempfile.TemporaryDirectory() as tmp:
        run_case(rng, tmp)       # raises Failure on a broken promise
