"""What a sigma map says: the focal band and its profile, summaries, and figures."""
