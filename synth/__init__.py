"""The synthesis core: text in, audio in storage out. Knows nothing of Celery.

Importing this package is cheap: torch and transformers load only when an engine is loaded.
"""
