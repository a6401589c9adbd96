"""ACA dark-current calibrations: archive reader, temperature scaling and dark-current model.

Sub-modules: ``temp_scale`` (dark-current temperature scaling) and ``dark_model`` (the
smoothed broken power-law dark-current histogram model and star acquisition probabilities).
"""
