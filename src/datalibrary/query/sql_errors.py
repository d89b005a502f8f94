"""SQL syntax errors in words a person can act on: where (line, column, the text there) and
what is wrong, never the parser's internals (class names, token dumps)."""

from __future__ import annotations

import re

from sqlglot.errors import ParseError, TokenError

# Parser vocabulary -> plain words ("Mul" is what sqlglot calls the * operator, and so on).
_NODE_WORDS = {
    "add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "eq": "=", "neq": "<>",
    "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "and": "AND", "or": "OR", "not": "NOT",
    "where": "WHERE", "having": "HAVING", "limit": "LIMIT", "offset": "OFFSET", "order": "ORDER BY",
    "group": "GROUP BY", "join": "JOIN", "in": "IN", "like": "LIKE", "between": "BETWEEN",
    "is": "IS", "cast": "CAST", "case": "CASE", "alias": "AS", "select": "SELECT",
}  # fmt: skip
_CLASS = re.compile(r"<class '(?:[\w.]*\.)?(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: TokenType\.(\w+), text: ([^,]*),[^>]*>")


def _token_words(match: re.Match[str]) -> str:
    return "the end of the query" if match.group(1) == "SENTINEL" else repr(match.group(2))


def _what(description: str) -> str:
    """The parser's description without internals."""
    missing = re.match(r"Required keyword: '(\w+)' missing for " + _CLASS.pattern, description)
    if missing:
        node = missing.group(2).lower()
        return f"something is missing after {_NODE_WORDS.get(node, node.upper())}"
    if description.startswith("Invalid expression / Unexpected token"):
        return "unexpected text"
    text = _TOKEN.sub(_token_words, description)
    text = _CLASS.sub(lambda m: _NODE_WORDS.get(m.group(1).lower(), m.group(1).upper()), text)
    return text[0].lower() + text[1:] if text else "the query could not be read"


def describe(exc: ParseError | TokenError) -> str:
    """One sentence: what is wrong and where (line, column and the text there)."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        first = str(exc).splitlines()[0] if str(exc) else ""
        if isinstance(exc, TokenError):
            # sqlglot stops at an unclosed quote or comment; say so and show where it starts
            shown = re.sub(r"^Error tokenizing '(.*)'$", r"\1", first)[-40:]
            return f"a quote or comment is not closed (the query stops reading at '{shown}')"
        return _what(_CLASS.sub("", first))[:200]
    error = errors[0]
    where = f"line {error.get('line')}, column {error.get('col')}"
    near = (error.get("highlight") or "").strip()
    return f"{_what(str(error.get('description', '')))} at {where}" + (f" near '{near[:40]}'" if near else "")
