"""The user modules: each serves one product's archive (the descriptions are in `mica.products`)."""
