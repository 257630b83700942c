"""An Amaranth-simulator testbench for any component with ``i``/``o`` vector streams."""

import numpy as np
from amaranth.sim import Simulator

__all__ = ["run_streams"]


def run_streams(dut, inputs, *, stall=0.0, seed=0, limit=20_000):
    """Feed ``inputs`` into ``dut.i`` (``stall``: probability that the input is not valid / the
    output not ready in a cycle) until as many vectors came out of ``dut.o`` or ``limit``
    cycles passed; then a few more cycles, in which nothing more may come out."""
    rng = np.random.default_rng(seed)
    got = []

    async def bench(ctx):
        sent, after = 0, 0
        for _ in range(limit):
            valid = sent < len(inputs) and rng.random() >= stall
            ready = rng.random() >= stall or len(got) == len(inputs)
            if sent < len(inputs):
                ctx.set(dut.i.payload, [int(v) for v in inputs[sent]])
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.o.ready, ready)
            if valid and ctx.get(dut.i.ready):
                sent += 1
            if ready and ctx.get(dut.o.valid):
                payload = ctx.get(dut.o.payload)
                got.append([int(payload[k]) for k in range(len(payload))])
            if len(got) >= len(inputs):
                after += 1
                if after > 50:
                    break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(len(got), -1)
