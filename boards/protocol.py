"""The frames of the host link, host side: encoder and decoder (pure Python).

Host to board (a request)::

    0xA5, length (2 bytes, little-endian), payload (length bytes), CRC-8

Board to host (a response)::

    0x5A, kind (1 = result, 2 = error), length (2 bytes, little-endian), payload, CRC-8

The payload of a request is one input vector packed like a stream payload
(:func:`strassen_hw.sim.payload.pack`: element ``j`` at bits ``j*width +: width``, little-endian,
zero-padded to whole bytes); of a result, one output vector packed the same way; of an error,
one byte, the error code. The CRC-8 (polynomial 0x07, initial value 0, no reflection: CRC-8/SMBUS)
covers every byte after the start byte. The board checks the length and the CRC of every
request, and a request whose bytes stop for longer than its timeout; each failure is answered
with an error frame and the receiver goes back to waiting for a start byte, so a lost or
corrupted byte costs that request and is never silently misaligned; bytes outside any frame (a
request whose start byte was lost) are reported by one error frame too. The same definitions are
used by the hardware (:mod:`strassen_hw.boards.link`).
"""

from dataclasses import dataclass

from strassen_hw.errors import StrassenHWError

__all__ = ["REQUEST_START", "RESPONSE_START", "KIND_RESULT", "KIND_ERROR", "ERRORS",
           "ProtocolError", "Frame", "FrameDecoder", "crc8", "encode_request",
           "encode_response"]

REQUEST_START = 0xA5
RESPONSE_START = 0x5A
KIND_RESULT = 1
KIND_ERROR = 2

#: Error codes of an error frame and what they mean.
ERRORS = {1: "CRC mismatch", 2: "wrong length", 3: "timeout between bytes",
          4: "overrun (the network was still busy)",
          5: "bytes outside a frame (a request lost its start byte)"}
ERROR_CRC, ERROR_LENGTH, ERROR_TIMEOUT, ERROR_OVERRUN, ERROR_STRAY = 1, 2, 3, 4, 5

_POLY = 0x07


def _table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY if crc & 0x80 else crc << 1) & 0xFF
        table.append(crc)
    return table


_TABLE = _table()


def crc8(data, crc=0):
    """CRC-8/SMBUS (polynomial 0x07, initial value ``crc``) of the bytes ``data``."""
    for byte in bytes(data):
        crc = _TABLE[crc ^ byte]
    return crc


def _body(fields, payload):
    payload = bytes(payload)
    if len(payload) > 0xFFFF:
        raise ValueError(f"a frame carries at most 65535 payload bytes, not {len(payload)}")
    body = bytes(fields) + len(payload).to_bytes(2, "little") + payload
    return body + bytes([crc8(body)])


def encode_request(payload):
    """The request frame carrying ``payload`` (bytes)."""
    return bytes([REQUEST_START]) + _body((), payload)


def encode_response(kind, payload):
    """The response frame of ``kind`` (:data:`KIND_RESULT` or :data:`KIND_ERROR`)."""
    return bytes([RESPONSE_START]) + _body((kind,), payload)


class ProtocolError(StrassenHWError, RuntimeError):
    """A frame that cannot be read; the message is one line."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``kind`` (``None`` for requests) and ``payload`` (bytes); for a frame
    that failed its checks, ``error`` holds the error code (see :data:`ERRORS`)."""
    kind: int = None
    payload: bytes = b""
    error: int = 0


class FrameDecoder:
    """Incremental decoder of request frames (``requests=True``, as the board reads them) or of
    response frames (as the host reads them).

    :meth:`feed` takes bytes as they arrive and returns the frames completed so far. Bytes
    between frames that are not a start byte are skipped (counted in :attr:`skipped`). A frame
    with a wrong CRC, or whose length is not ``length`` when given, becomes a :class:`Frame`
    with ``error`` set, and decoding resumes at the next start byte, like the board.

    Parameters
    ----------
    requests : bool
        Decode host-to-board frames (no kind byte) rather than board-to-host frames.
    length : int, optional
        The only payload length accepted.
    """

    def __init__(self, *, requests=False, length=None):
        self.requests, self.length = requests, length
        self.skipped = 0
        self._buffer = None

    def feed(self, data):
        """Decode ``data`` (bytes); return the list of completed :class:`Frame`."""
        frames = []
        start = REQUEST_START if self.requests else RESPONSE_START
        header = 2 if self.requests else 3
        for byte in bytes(data):
            if self._buffer is None:
                if byte == start:
                    self._buffer = bytearray()
                else:
                    self.skipped += 1
                continue
            buf = self._buffer
            buf.append(byte)
            if len(buf) == header:
                size = int.from_bytes(buf[-2:], "little")
                bad_kind = not self.requests and buf[0] not in (KIND_RESULT, KIND_ERROR)
                if bad_kind or (self.length is not None and size != self.length):
                    frames.append(Frame(None if self.requests else buf[0], bytes(),
                                        ERROR_LENGTH))
                    self._buffer = None
                continue
            if len(buf) > header:
                size = int.from_bytes(buf[header - 2:header], "little")
                if len(buf) == header + size + 1:
                    kind = None if self.requests else buf[0]
                    payload = bytes(buf[header:-1])
                    ok = crc8(buf[:-1]) == buf[-1]
                    frames.append(Frame(kind, payload, 0 if ok else ERROR_CRC))
                    self._buffer = None
        return frames

    def reset(self):
        """Drop a partly received frame (what the board does on a timeout)."""
        self._buffer = None

    @property
    def busy(self):
        """True while a frame is partly received."""
        return self._buffer is not None
