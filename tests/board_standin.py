"""A stand-in board for the host side: answers request frames over a pseudo-terminal with the
reference's outputs, like the hardware would (not a pytest file)."""

import os
import threading
import tty

import numpy as np

from strassen_hw.boards.protocol import (KIND_ERROR, KIND_RESULT, FrameDecoder,
                                         encode_response)
from strassen_hw.reference import forward
from strassen_hw.sim.payload import pack, unpack


class StandInBoard:
    """Opens a pseudo-terminal; :attr:`port` is the path a host opens. ``corrupt`` flips a bit
    of the answer with that index; ``silent_after`` stops answering after that many."""

    def __init__(self, net, *, corrupt=None, silent_after=None, report_error=None):
        self.net = net
        self.corrupt, self.silent_after, self.report_error = corrupt, silent_after, report_error
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)

    def _answer(self, frame):
        net = self.net
        if frame.error or self.answered == self.report_error:
            return encode_response(KIND_ERROR, bytes([frame.error or 1]))
        x = unpack(np.frombuffer(frame.payload, np.uint8)[None], net.n_in, net.input.width,
                   net.input.signed)
        y = pack(forward(net, x), net.output.width)[0].tobytes()
        out = bytearray(encode_response(KIND_RESULT, y))
        if self.answered == self.corrupt:
            out[5] ^= 0x04
        return bytes(out)

    def _serve(self):
        import select
        in_bytes = (self.net.n_in * self.net.input.width + 7) // 8
        decoder = FrameDecoder(requests=True, length=in_bytes)
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for frame in decoder.feed(data):
                if self.silent_after is not None and self.answered >= self.silent_after:
                    continue
                os.write(self.master, self._answer(frame))
                self.answered += 1
