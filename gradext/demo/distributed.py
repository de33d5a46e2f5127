"""Data-parallel training for the demo under ``torchrun --nproc_per_node=N python -m gradext
demo``: PyTorch DDP over gloo (CPU) or NCCL (one GPU per rank), detected from torchrun's
environment, so the user changes no code.

Seeds: every rank builds the model from `seed` (identical initial parameters, as DDP expects),
then seeds its noise with ``splitmix64(splitmix64(seed) ^ rank)``: a different, well-mixed seed
per rank (splitmix64 is the standard seed expander of the xoshiro generators), and the whole
run reproducible from the one `seed`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

import gradext


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start() -> Context:
    """Joins torchrun's process group when launched by it (WORLD_SIZE > 1); else one process."""
    use_cuda = torch.cuda.is_available() and gradext.has_cuda()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Context(device=torch.device("cuda" if use_cuda else "cpu"))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return Context(dist.get_rank(), dist.get_world_size(), device)


def stop(ctx: Context) -> None:
    if ctx.distributed:
        dist.destroy_process_group()


_MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """One step of splitmix64 (Steele, Lea and Flood 2014): a bijective 64-bit mixer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def noise_seed(seed: int, rank: int) -> int:
    """The seed of rank `rank`'s noise (see the module docstring), below 2^63 as
    torch.manual_seed takes it."""
    return splitmix64(splitmix64(seed & _MASK64) ^ rank) >> 1


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def gather_rows(ctx: Context, row: list) -> list[list]:
    """Every rank's `row` on every rank (a list of one row when not distributed)."""
    if not ctx.distributed:
        return [row]
    rows = [None] * ctx.world_size
    dist.all_gather_object(rows, row)
    return rows
