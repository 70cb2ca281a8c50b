"""Data sets of the plugin; the imports below exist to register them."""
