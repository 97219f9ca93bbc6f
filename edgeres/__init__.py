"""edgeres: take a ResNet to edge hardware, with the numbers to prove it."""

__version__ = "0.1.0"
