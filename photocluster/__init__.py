"""photocluster: find every face in a photo library, group faces by person, name and export them."""

__version__ = "0.1.0"
