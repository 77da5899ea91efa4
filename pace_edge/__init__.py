"""pace-edge: deploy PACE spectral classifiers next to the spectrometer."""

__version__ = "0.1.0"
