"""Torch models and training: architectures (models), the training engine (engine), Adam without torch.optim
(optim), checkpoints (checkpoint), pruning masks (pruning)."""
