"""rllib-uas: Unified Action Space (UAS) and Cross-Group Inverse (CGI) MARL on Ray RLlib, with SMAC."""

__version__ = "0.1.0"
