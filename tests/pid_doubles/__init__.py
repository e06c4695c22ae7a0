"""In-process doubles of the Handle and DataCite REST APIs, served on 127.0.0.1 (with tests/serving.py)."""
