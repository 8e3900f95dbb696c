"""Limelight test suite (a package, so test folders such as ``profile`` never shadow the
standard library modules of the same name)."""
