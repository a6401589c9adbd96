"""The original mica's tests (a package: their file names repeat those of tests/)."""
