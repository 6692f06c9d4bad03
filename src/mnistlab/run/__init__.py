"""The flows behind the entry points."""
