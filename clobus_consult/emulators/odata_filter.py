"""The subset of OData v3 ``$filter`` that 1C's standard interface accepts and this service sends.

Grammar: ``or`` / ``and`` / ``not``, parentheses, comparisons ``eq ne gt ge lt le``, literals ``'text'``
(a quote inside is doubled), ``guid'...'``, ``datetime'YYYY-MM-DDTHH:MM:SS'``, ``true``/``false``/``null``,
numbers, and fields, possibly through a reference (``Абонент/Parent_Key``). No functions, no ``in``.

``parse`` builds a tree of tuples; ``evaluate`` runs it against one object through a ``resolve(path)``
callback that returns ``(kind, value)`` with the value already typed (see ``LITERAL_KINDS``).
"""
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
LITERAL_KINDS = {"string", "guid", "datetime", "bool", "number", "null"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<paren>[()])
      | (?P<typed>(?:guid|datetime)'[^']*')
      | (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?)(?=[\s()]|$)
      | (?P<word>[^\s()']+)
    )""",
    re.VERBOSE,
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class FilterError(ValueError):
    """A bad ``$filter``; ``code`` is the 1C internal error code to answer with (HTTP 400)."""

    def __init__(self, message: str, code: str = "14"):
        super().__init__(message)
        self.code = code


def tokenize(text: str) -> list[tuple[str, object]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"Синтаксическая ошибка в $filter в позиции {pos + 1}")
        pos = m.end()
        if m["paren"]:
            tokens.append(("paren", m["paren"]))
        elif m["typed"]:
            prefix, _, raw = m["typed"].partition("'")
            tokens.append(("lit", _typed_literal(prefix, raw[:-1])))
        elif m["string"]:
            tokens.append(("lit", ("string", m["string"][1:-1].replace("''", "'"))))
        elif m["number"]:
            tokens.append(("lit", ("number", Decimal(m["number"]))))
        else:
            word = m["word"]
            if word in ("true", "false"):
                tokens.append(("lit", ("bool", word == "true")))
            elif word == "null":
                tokens.append(("lit", ("null", None)))
            elif word in COMPARISONS or word in ("and", "or", "not"):
                tokens.append(("op", word))
            else:
                tokens.append(("field", tuple(word.split("/"))))
    return tokens


def _typed_literal(prefix: str, raw: str) -> tuple[str, object]:
    if prefix == "guid":
        if not _GUID.match(raw):
            raise FilterError(f"Неверный литерал guid'{raw}'", code="1")
        return ("guid", raw.lower())
    try:
        return ("datetime", datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise FilterError(f"Неверный литерал datetime'{raw}'", code="1") from None


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.pos = tokens, 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def parse_or(self):
        node = self.parse_and()
        while self.peek() == ("op", "or"):
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while self.peek() == ("op", "and"):
            self.take()
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if self.peek() == ("op", "not"):
            self.take()
            return ("not", self.parse_not())
        left = self.parse_primary()
        kind, value = self.peek()
        if kind == "op" and value in COMPARISONS:
            self.take()
            return ("cmp", value, left, self.parse_primary())
        return ("truth", left)

    def parse_primary(self):
        kind, value = self.take()
        if kind == "paren" and value == "(":
            node = self.parse_or()
            if self.take() != ("paren", ")"):
                raise FilterError("В $filter не хватает закрывающей скобки")
            return node
        if kind == "lit":
            return ("lit", value)
        if kind == "field":
            return ("field", value)
        raise FilterError(f"Синтаксическая ошибка в $filter: неожиданное {value!r}")


def parse(text: str):
    tokens = tokenize(text)
    if not tokens:
        raise FilterError("Пустой $filter")
    parser = _Parser(tokens)
    node = parser.parse_or()
    if parser.pos != len(tokens):
        raise FilterError(f"Синтаксическая ошибка в $filter: лишнее {parser.peek()[1]!r}")
    return node


def field_paths(node) -> set[tuple[str, ...]]:
    """Every field the tree mentions (to reject unknown ones before evaluating anything)."""
    tag = node[0]
    if tag == "field":
        return {node[1]}
    if tag == "lit":
        return set()
    return set().union(*(field_paths(child) for child in node[1:] if isinstance(child, tuple)))


def evaluate(node, resolve) -> bool:
    tag = node[0]
    if tag == "or":
        return evaluate(node[1], resolve) or evaluate(node[2], resolve)
    if tag == "and":
        return evaluate(node[1], resolve) and evaluate(node[2], resolve)
    if tag == "not":
        return not evaluate(node[1], resolve)
    if tag == "truth":
        kind, value = _operand(node[1], resolve)
        if kind != "bool":
            raise FilterError("Выражение $filter должно быть логическим", code="1")
        return bool(value)
    _, op, left, right = node
    return _compare(op, _operand(left, resolve), _operand(right, resolve))


def _operand(node, resolve):
    if node[0] == "field":
        return resolve(node[1])
    if node[0] == "lit":
        return node[1]
    return ("bool", evaluate(node, resolve))


def _compare(op: str, left, right) -> bool:
    (lkind, lval), (rkind, rval) = left, right
    if lval is None or rval is None:  # null semantics: only eq/ne are meaningful
        same = lval is None and rval is None
        return {"eq": same, "ne": not same}.get(op, False)
    if lkind != rkind:
        raise FilterError(f"Несовместимые типы в $filter: {lkind} и {rkind}", code="1")
    if lkind == "string":  # fixed-length strings are stored right-padded; 1C compares without the padding
        lval, rval = lval.rstrip(" "), rval.rstrip(" ")
    if lkind == "number":
        try:
            lval, rval = Decimal(lval), Decimal(rval)
        except InvalidOperation:
            raise FilterError("Неверное число в $filter", code="1") from None
    return {
        "eq": lval == rval, "ne": lval != rval, "gt": lval > rval,
        "ge": lval >= rval, "lt": lval < rval, "le": lval <= rval,
    }[op]
