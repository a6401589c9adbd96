"""mica: retrieve, archive and serve Chandra ACA telemetry and aspect products."""

__version__ = "0.1.0"
