package classic

import "github.com/gander-pair/gander/internal/sanitize"

func sanitizeText(s string, keepNewlines bool) string { return sanitize.Text(s, keepNewlines) }

// quoted is a peer's name, safe for the terminal, in quotes.
func quoted(s string) string { return "'" + sanitize.Line(s) + "'" }
