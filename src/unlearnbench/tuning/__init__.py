"""The tune stage: knob searches on validation data (tuning, search) and the sweeps' summaries and sensitivity
figures (sensitivity)."""
