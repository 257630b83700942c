"""A small digits model trained once per test session (a few seconds), shared by the
tests/test_train_*.py files."""

import functools

#: Small enough to train in seconds, big enough to land well above chance.
QUICK = dict(hidden=32, r=(12, 8), teacher_epochs=20, phase_epochs=(20, 20, 10), seed=0)


@functools.lru_cache(maxsize=None)
def digits():
    from strassen_hw.train import data
    return data.load()


@functools.lru_cache(maxsize=None)
def quick_result():
    from strassen_hw.train.recipe import TrainConfig, train
    return train(TrainConfig(**QUICK), digits(), progress=False)
