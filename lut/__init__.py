"""lut package of hwnas."""
