"""Video restoration helpers (frame-by-frame restoration of videos with image-to-video models)."""
