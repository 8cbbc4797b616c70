"""People-facing pages (login, consent, connections) and the OAuth endpoints we extend."""
