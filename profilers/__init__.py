"""profilers package of hwnas."""
