"""PyTorch training of Strassen layers, freezing into frozen networks, and discovery."""
