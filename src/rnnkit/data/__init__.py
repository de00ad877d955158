"""Data: tokenizer and vocabulary, padding and bucketing, and the data sets."""
