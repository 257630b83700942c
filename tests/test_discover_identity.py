"""Bilinear algorithms: the tensor identity decides exactness, in integers (numpy only)."""

import itertools
import json

import numpy as np
import pytest

from strassen_hw.matmul import (PAPER_LEARNED, STRASSEN, AlgorithmError, BilinearAlgorithm,
                                load_algorithm, matmul_tensor, save_algorithm)

# The paper's matrices exactly as printed (column-major vec), eq. 2 and Sec. 3.1.
PRINTED_STRASSEN_W_A = [[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0],
                        [-1, 1, 0, 0], [0, 0, 1, -1]]


def _basis(n, k):
    e = np.zeros(n * n, dtype=np.int64)
    e[k] = 1
    return e.reshape(n, n)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tensor_is_matrix_multiplication(n):
    # M[:, k, l] = vec(E_k @ E_l), computed with numpy's own matmul on basis matrices.
    expected = np.stack([np.stack([(_basis(n, k) @ _basis(n, l)).reshape(-1)
                                   for l in range(n * n)], axis=1) for k in range(n * n)], axis=1)
    assert np.array_equal(matmul_tensor(n), expected)


@pytest.mark.parametrize("algorithm", [STRASSEN, PAPER_LEARNED], ids=["strassen", "paper"])
def test_fixtures_are_exact(algorithm):
    assert (algorithm.n, algorithm.r) == (2, 7)
    assert algorithm.is_exact()
    rng = np.random.default_rng(1)
    a, b = rng.integers(-1000, 1000, (2, 50, 2, 2))
    assert np.array_equal(algorithm.multiply(a, b), a @ b)


def test_printed_matrices_need_the_column_major_vec():
    # As printed, the paper's W_a/W_b act on the column-major vec; read row-major they fail.
    assert STRASSEN.w_a.tolist() != PRINTED_STRASSEN_W_A
    swapped = BilinearAlgorithm(PRINTED_STRASSEN_W_A, STRASSEN.w_b, STRASSEN.w_c)
    assert not swapped.is_exact()


@pytest.mark.parametrize("algorithm", [STRASSEN, PAPER_LEARNED], ids=["strassen", "paper"])
def test_every_single_entry_change_fails(algorithm):
    for key in ("w_a", "w_b", "w_c"):
        base = getattr(algorithm, key)
        for index in itertools.product(*map(range, base.shape)):
            for value in {-1, 0, 1} - {int(base[index])}:
                w = base.copy()
                w[index] = value
                wrong = BilinearAlgorithm(**{**vars(algorithm), key: w})
                assert not wrong.is_exact(), (key, index, value)


def test_naive_algorithm_is_exact_and_one_flip_is_not():
    n = 2
    rows = [(p, s, q) for p in range(n) for s in range(n) for q in range(n)]
    w_a = np.array([_basis(n, p * n + s).reshape(-1) for p, s, q in rows])
    w_b = np.array([_basis(n, s * n + q).reshape(-1) for p, s, q in rows])
    w_c = np.array([_basis(n, p * n + q).reshape(-1) for p, s, q in rows]).T
    assert BilinearAlgorithm(w_a, w_b, w_c).is_exact()
    w_c[0, 0] = -1
    assert not BilinearAlgorithm(w_a, w_b, w_c).is_exact()


def test_multiply_is_exact_at_the_extremes():
    lo, hi = -128, 127
    mixed = np.array([[lo, hi], [hi, lo]])
    cases = [np.full((2, 2), v) for v in (lo, hi)] + [mixed, -mixed - 1]
    for a, b in itertools.product(cases, repeat=2):
        assert np.array_equal(STRASSEN.multiply(a, b), a @ b)
        assert np.array_equal(PAPER_LEARNED.multiply(a, b), a @ b)


def test_canonical_ignores_order_and_sign_pairs():
    rng = np.random.default_rng(0)
    perm = rng.permutation(7)
    w_a, w_b = STRASSEN.w_a[perm].copy(), STRASSEN.w_b[perm].copy()
    w_c = STRASSEN.w_c[:, perm].copy()
    w_a[0] *= -1
    w_b[0] *= -1      # (-a)(-b)c: same product
    w_b[3] *= -1
    w_c[:, 3] *= -1   # a(-b)(-c)
    moved = BilinearAlgorithm(w_a, w_b, w_c)
    assert moved.is_exact()
    assert moved.canonical() == STRASSEN.canonical()
    assert STRASSEN.canonical() != PAPER_LEARNED.canonical()
    w_a[1] *= -1      # a single flip changes the algorithm (and breaks it)
    assert BilinearAlgorithm(w_a, w_b, w_c).canonical() != STRASSEN.canonical()


def test_json_round_trip(tmp_path):
    path = tmp_path / "s.json"
    save_algorithm(STRASSEN, path)
    doc = json.loads(path.read_text())
    assert set(doc) == {"W_a", "W_b", "W_c"}
    assert doc["W_a"] == STRASSEN.w_a.tolist() and len(doc["W_c"]) == 4
    again = load_algorithm(path)
    assert again.canonical() == STRASSEN.canonical() and again.is_exact()


@pytest.mark.parametrize("doc, message", [
    ({"W_a": [[1]], "W_b": [[1]]}, "must be an object with the keys W_a, W_b and W_c"),
    ({"W_a": [[2, 0, 0, 0]], "W_b": [[1, 0, 0, 0]], "W_c": [[1]] * 4},
     "W_a must hold only -1, 0 and 1, not 2"),
    ({"W_a": [[1, 0, 0]], "W_b": [[1, 0, 0]], "W_c": [[1]] * 3},
     "W_a has 3 columns; it must be n² for n×n matrices"),
    ({"W_a": [[1, 0, 0, 0]], "W_b": [[1, 0, 0, 0]], "W_c": [[1, 1]] * 4},
     "W_c has shape 4x2, expected 4x1"),
    ({"W_a": [[0.5, 0, 0, 0]], "W_b": [[1, 0, 0, 0]], "W_c": [[1]] * 4},
     "W_a must hold only -1, 0 and 1, not 0.5"),
])
def test_bad_files_say_what_is_wrong(tmp_path, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AlgorithmError) as info:
        load_algorithm(path)
    assert str(info.value) == f"{path}: {message}"


def test_missing_file(tmp_path):
    with pytest.raises(AlgorithmError, match="no such file"):
        load_algorithm(tmp_path / "nope.json")
