"""The click CLI: thin commands over the library packages."""
