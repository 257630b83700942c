"""Plain PyTorch models of the digits: the float teachers, to be strassenized for students."""

from torch import nn

__all__ = ["digits_cnn", "DIGITS_CNN_CHANNELS"]

#: Channels of the digits CNN's two convolutions.
DIGITS_CNN_CHANNELS = (8, 16)


def digits_cnn(channels=DIGITS_CNN_CHANNELS, n_classes=10):
    """A small CNN for the 8×8 digits, fed the flat 64 pixels like the MLP.

    ``Unflatten → 1×8×8 → Conv2d(1, c1, 3, padding 1) → ReLU → MaxPool 2 → Conv2d(c1, c2, 3,
    padding 1) → ReLU → MaxPool 2 → Flatten (c2·2·2) → Linear(c2·4, n_classes)``. Dense, it
    needs ``64·9·c1 + 16·9·c1·c2 + 4·c2·n_classes`` multiplications per image (23,680 for
    the default 8 and 16 channels).
    """
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * c2, n_classes))
