"""Wire protocols as pure byte transforms (no I/O): one protocol per module."""
