"""Featurization of molecules into the three views MMSA learns from, and their storage."""
