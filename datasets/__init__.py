"""Dataset sources, caching, preprocessing and shared splits."""
