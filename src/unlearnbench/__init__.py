"""unlearnbench: reproduce machine-unlearning papers end to end."""

__version__ = "0.1.0"
