"""Product archives: each module describes one product and serves it through the shared engine."""
