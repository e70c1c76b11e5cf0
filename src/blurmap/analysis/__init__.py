"""What a sigma map says: the focal band and its profile, summaries, and figures."""

__all__: list[str] = []  # its modules hold the API: focal, summary, figures
