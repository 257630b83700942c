"""Single-process, multi-process and multi-machine training through one code path.

Launched plainly, training runs in this process on CUDA when present, else on the CPU. Launched
by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``), each process joins a
process group (NCCL on CUDA, gloo on the CPU) and the model is wrapped in
``DistributedDataParallel``; every process then holds identical weights after every step.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Context", "setup", "teardown"]


@dataclass(frozen=True)
class Context:
    """Where this process trains: its ``rank`` among ``world_size`` and its ``device``."""
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def main(self):
        """True in the one process that prints and writes files."""
        return self.rank == 0

    def wrap(self, model):
        """``model`` wrapped for data-parallel training when distributed, else unchanged."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def setup(device=None):
    """Join the ``torchrun`` process group if there is one and pick the device.

    Parameters
    ----------
    device : str or None
        ``"cpu"``, ``"cuda"`` or None for CUDA when available, else CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world_size, device)


def teardown(context):
    """Leave the process group (a no-op when not distributed)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
