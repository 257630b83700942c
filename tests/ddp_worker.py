"""Run by tests/test_train_fit.py under torchrun (2 CPU processes, gloo): train a small model
for a few steps, then save this process's weights to OUT_DIR/rank<k>.pt."""

import sys

import torch

from strassen_hw.train import data
from strassen_hw.train.distributed import setup, teardown
from strassen_hw.train.recipe import TrainConfig, train

context = setup("cpu")
config = TrainConfig(hidden=16, r=(6, 4), teacher_epochs=1, phase_epochs=(1, 1, 1), seed=3)
result = train(config, data.load(), context=context, progress=False)
state = {f"teacher.{k}": v for k, v in result.teacher.state_dict().items()}
state.update({f"student.{k}": v for k, v in result.student.state_dict().items()})
torch.save({"world_size": context.world_size, "state": state},
           f"{sys.argv[1]}/rank{context.rank}.pt")
teardown(context)
