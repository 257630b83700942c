"""The one user-facing error class.

Every error that a user's input or environment can cause (a malformed or huge file, a shape
mismatch, an unsupported torch op, a missing tool, a design that does not fit) is a
:class:`StrassenHWError` whose message is one line naming the problem and the fix. The command
line catches this class in one place and prints that line; Python callers can catch it too.
The kinds below keep their own names (and, for compatibility, their older base classes)."""

__all__ = ["StrassenHWError", "HardwareError"]


class StrassenHWError(Exception):
    """A problem the user can fix; the message is one line naming it and the fix."""


class HardwareError(StrassenHWError):
    """A valid network whose hardware cannot be built as asked (too wide, too large)."""
