"""CNI_ARGS (`K=V;K=V`) parsed the way the reference's types.LoadArgs does.

Each plugin names the keys it understands (Go struct field names, case-sensitive:
`IP`, `MAC`). An unknown key is an error unless `IgnoreUnknown` is true, as in Go,
because kubelet and rkt rely on exactly that behaviour.
"""

from __future__ import annotations

from cni_rkt.errors import CNIError, ErrorCode, go_quote

_TRUE = ("1", "true")
_FALSE = ("0", "false")


def _args_error(msg: str) -> CNIError:
    return CNIError(ErrorCode.INVALID_ENVIRONMENT, msg, "CNI_ARGS")


def parse_bool(value: str) -> bool:
    """Go's UnmarshallableBool: any case of 1/0/true/false (so "TRUE" too, not "t")."""
    value = value.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"boolean unmarshal error: invalid input {value}")


def parse_cni_args(raw: str, known_keys: frozenset[str] | set[str]) -> dict[str, str]:
    """Return the known keys' values; raise code 4 on a malformed pair or an unknown key."""
    if not raw:
        return {}
    values: dict[str, str] = {}
    unknown: list[str] = []
    ignore_unknown = False
    for pair in raw.split(";"):
        parts = pair.split("=")
        if len(parts) != 2:
            raise _args_error(f"ARGS: invalid pair {go_quote(pair)}")
        key, value = parts
        if key == "IgnoreUnknown":
            try:
                ignore_unknown = parse_bool(value)
            except ValueError as exc:
                raise _args_error(f"ARGS: error parsing value of pair {go_quote(pair)}: {exc}") from None
        elif key in known_keys:
            values[key] = value
        else:
            unknown.append(pair)
    if unknown and not ignore_unknown:
        quoted = " ".join(go_quote(p) for p in unknown)
        raise _args_error(f"ARGS: unknown args [{quoted}]")
    return values
