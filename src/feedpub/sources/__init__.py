"""Sources turn outside content into ParsedArticle records. A source only parses:
it never writes the store, feeds or mail. ``collect`` does the rest."""
