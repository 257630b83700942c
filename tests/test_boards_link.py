"""The UART, the frames and the board logic in Amaranth's simulator (quick)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from strassen_hw.boards import get_board
from strassen_hw.boards.protocol import (ERROR_CRC, ERROR_LENGTH, ERROR_STRAY, ERROR_TIMEOUT,
                                         KIND_ERROR, KIND_RESULT, Frame, FrameDecoder, crc8,
                                         encode_request, encode_response)
from strassen_hw.boards.top import BoardLogic
from strassen_hw.boards.uart import UARTReceiver, UARTTransmitter, divisor
from strassen_hw.frozen import random_network
from strassen_hw.hw import StrassenNetwork
from strassen_hw.reference import forward
from strassen_hw.sim.payload import pack, unpack


def test_crc8_check_value():
    # CRC-8/SMBUS catalogue check value of the ASCII digits 1..9
    assert crc8(b"123456789") == 0xF4
    assert crc8(b"") == 0


def test_frames_round_trip_and_errors():
    payload = bytes(range(7))
    decoder = FrameDecoder(requests=True, length=7)
    frame = encode_request(payload)
    assert frame[:3] == bytes([0xA5, 7, 0])
    assert decoder.feed(b"\x00\x13" + frame) == [Frame(None, payload)]
    assert decoder.skipped == 2
    bad = bytearray(frame)
    bad[5] ^= 0x10
    assert decoder.feed(bytes(bad)) == [Frame(None, bytes(bad[3:-1]), ERROR_CRC)]
    assert decoder.feed(encode_request(b"\x01")) == [Frame(None, b"", ERROR_LENGTH)]
    responses = FrameDecoder()
    out = encode_response(KIND_RESULT, b"\x05\x06") + encode_response(KIND_ERROR, b"\x03")
    assert responses.feed(out) == [Frame(KIND_RESULT, b"\x05\x06"), Frame(KIND_ERROR, b"\x03")]


def test_divisor_checks():
    assert divisor(12_000_000, 115200) == 104
    assert divisor(25_000_000, 115200) == 217
    with pytest.raises(ValueError, match="too fast"):
        divisor(12_000_000, 6_000_000)
    with pytest.raises(ValueError, match="off at 12 MHz"):
        divisor(12_000_000, 1_600_000)


def _uart_bits(byte):
    return [0] + [(byte >> k) & 1 for k in range(8)] + [1]


async def _send(ctx, line, data, cycles_per_bit, gap=0):
    for byte in data:
        for bit in _uart_bits(byte):
            ctx.set(line, bit)
            await ctx.tick().repeat(cycles_per_bit)
        if gap:
            await ctx.tick().repeat(gap)


async def _receive(ctx, line, count, cycles_per_bit, limit):
    """Bytes read from ``line`` (sampled mid-bit), until ``count`` bytes or ``limit`` cycles."""
    out, waited = [], 0
    while len(out) < count and waited < limit:
        await ctx.tick()
        waited += 1
        if ctx.get(line) == 0:
            await ctx.tick().repeat(cycles_per_bit // 2)
            bits = []
            for _ in range(9):
                await ctx.tick().repeat(cycles_per_bit)
                bits.append(ctx.get(line))
            waited += cycles_per_bit * 10
            assert bits[8] == 1, "stop bit"
            out.append(sum(b << k for k, b in enumerate(bits[:8])))
    return bytes(out)


@pytest.mark.parametrize("cycles", [4, 7])
def test_uart_loopback(cycles):
    rx, tx = UARTReceiver(cycles), UARTTransmitter(cycles)
    data = bytes(random.Random(cycles).randrange(256) for _ in range(12))
    got = []

    async def feed(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def read(ctx):
        ctx.set(rx.o.ready, 1)
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
                assert not ctx.get(rx.error)

    from amaranth.hdl import Module
    m = Module()
    m.submodules.rx, m.submodules.tx = rx, tx
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(read)
    sim.run_until(1e-6 * cycles * 10 * (len(data) + 4))
    assert bytes(got) == data


def test_board_logic_answers_recovers_and_reports():
    """A whole board (network + link) in Amaranth's simulator: good requests get the
    reference's answers; a corrupted request, a wrong length, a truncated request and one that
    lost its start byte get error frames, and the next good request is answered again."""
    net = random_network([(6, 4, 3)], seed=3)
    cycles = 4
    logic = BoardLogic(StrassenNetwork(net, trees="amaranth"), clock_hz=1000, divisor=cycles,
                       timeout=60)
    x = np.random.default_rng(0).integers(-128, 128, (3, net.n_in))
    frames = [encode_request(bytes(row)) for row in pack(x, net.input.width)]
    corrupt = bytearray(frames[1])
    corrupt[4] ^= 0x01
    plan = [(frames[0], 0), (bytes(corrupt), 0), (frames[1], 0), (encode_request(b"\x01"), 0),
            (frames[2][:-2], 100), (b"\x00" + frames[1][1:], 100), (frames[2], 0)]
    received = []

    async def host(ctx):
        for data, gap in plan:
            await _send(ctx, logic.rx, data, cycles)
            if gap:
                await ctx.tick().repeat(gap)

    async def listen(ctx):
        received.append(await _receive(ctx, logic.tx, 3 * 8 + 4 * 6, cycles, 12000))

    sim = Simulator(logic)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(listen)
    sim.run()
    decoded = FrameDecoder().feed(received[0])
    expected = forward(net, x)
    results = [f for f in decoded if f.kind == KIND_RESULT]
    errors = [f.payload[0] for f in decoded if f.kind == KIND_ERROR]
    assert all(f.error == 0 for f in decoded)
    assert errors == [ERROR_CRC, ERROR_LENGTH, ERROR_TIMEOUT, ERROR_STRAY]
    got = unpack(np.frombuffer(b"".join(f.payload for f in results), np.uint8).reshape(-1, 3),
                 net.n_out, net.output.width, net.output.signed)
    assert np.array_equal(got, expected)
    assert [f.kind for f in decoded] == [KIND_RESULT, KIND_ERROR, KIND_RESULT, KIND_ERROR,
                                         KIND_ERROR, KIND_ERROR, KIND_RESULT]


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown board 'de10'; known boards: icebreaker, "
                                         r"ulx3s-85f"):
        get_board("de10")
