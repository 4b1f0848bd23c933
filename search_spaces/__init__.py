"""search_spaces package of hwnas."""
