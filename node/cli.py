"""mosaik CLI placeholder."""
