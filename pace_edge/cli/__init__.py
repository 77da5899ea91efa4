"""The ``pace-edge`` command line: one module per sub-command."""
