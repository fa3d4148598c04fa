"""UIB's artifacts: its tables (tables) and figures (plots)."""
