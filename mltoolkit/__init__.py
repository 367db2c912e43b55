"""mltk: five classic machine-learning techniques behind one command line."""

__version__ = "0.1.0"
