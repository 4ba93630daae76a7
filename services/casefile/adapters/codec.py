"""Translation between protobuf messages, domain dataclasses and stored JSON documents.

The proto messages mirror the domain dataclasses field by field (same names), so one generic
mapping serves every command and record: Timestamp <-> aware datetime, Duration <-> timedelta,
decimal text <-> Decimal, enum name <-> StrEnum, nested message <-> dataclass, repeated <->
tuple. Stored case documents are the domain's canonical JSON, read back with pydantic.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import TypeAdapter

from casefile.domain.canonical import canonical_json
from casefile.domain.cases import Case
from casefile.domain.errors import InvalidCommand

_CASE = TypeAdapter(Case)
# Case fields holding a tuple of records (evidence, samples, ...): they grow with the case and
# their frozen items are shared between successive versions of it, so their encodings are kept.
LIST_FIELDS = frozenset(
    f.name
    for f in dataclasses.fields(Case)
    if typing.get_origin(typing.get_type_hints(Case)[f.name]) is tuple
    and dataclasses.is_dataclass(typing.get_args(typing.get_type_hints(Case)[f.name])[0])
)
_SORTED_FIELDS = tuple(sorted(f.name for f in dataclasses.fields(Case)))


class EncodingMemo:
    """Encodings of one case's list items, by item identity (each entry keeps its item
    alive, so an id is never reused while it is cached). A write re-encodes only what is new."""

    def __init__(self) -> None:
        self.json: dict[int, tuple[Any, str]] = {}
        self.proto: dict[int, tuple[Any, bytes]] = {}


def case_to_doc(case: Case, memo: EncodingMemo | None = None) -> str:
    """The canonical JSON of `case`; with a memo, byte-identical but built from the cached
    encodings of unchanged list items (canonical JSON of an object is its sorted members)."""
    if memo is None:
        return canonical_json(case)
    old, new = memo.json, {}
    parts = []
    for name in _SORTED_FIELDS:
        value = getattr(case, name)
        if name in LIST_FIELDS:
            texts = []
            for item in value:
                hit = old.get(id(item))
                if hit is None or hit[0] is not item:
                    hit = (item, canonical_json(item))
                new[id(item)] = hit
                texts.append(hit[1])
            parts.append(f'"{name}":[{",".join(texts)}]')
        else:
            parts.append(f'"{name}":{canonical_json(value)}')
    memo.json = new
    return "{" + ",".join(parts) + "}"


def list_field_chunks(message_type: type[Message], case: Case, memo: EncodingMemo) -> bytes:
    """The wire encoding of the list fields of `case` as fields of `message_type`.

    Protobuf parses concatenated encodings as one message and keeps repeated items in order,
    so the reply is the encoding of the scalar part followed by these cached chunks."""
    old, new = memo.proto, {}
    chunks = []
    for name in sorted(LIST_FIELDS):
        for item in getattr(case, name):
            hit = old.get(id(item))
            if hit is None or hit[0] is not item:
                holder = message_type()
                fill_message(getattr(holder, name).add(), item)
                hit = (item, holder.SerializeToString())
            new[id(item)] = hit
            chunks.append(hit[1])
    memo.proto = new
    return b"".join(chunks)


def case_from_doc(doc: str) -> Case:
    return _CASE.validate_json(doc)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _scalar(hint: Any, value: Any, name: str, optional: bool, default: Any) -> Any:
    if isinstance(hint, type) and issubclass(hint, Enum):
        if value == "":
            if default is not dataclasses.MISSING:
                return default
            if optional:
                return None
            raise InvalidCommand(f"{name} is required")
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(m.value for m in hint)  # type: ignore[attr-defined]
            raise InvalidCommand(f"{name} must be one of {allowed}; got {value!r}") from None
    if hint is Decimal:
        if value == "":
            if optional:
                return None
            raise InvalidCommand(f"{name} is required (decimal text)")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise InvalidCommand(f"{name} must be decimal text; got {value!r}") from None
        if not number.is_finite():
            raise InvalidCommand(f"{name} must be finite")
        return number
    if hint is str and optional and value == "":
        return None
    return value


def from_message(cls: type, msg: Message, *, skip: frozenset[str] = frozenset()) -> Any:
    """Builds dataclass `cls` from a message whose fields carry the same names."""
    fields = msg.DESCRIPTOR.fields_by_name
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        descriptor = fields.get(f.name)
        if descriptor is None:
            continue  # a domain field the API does not carry keeps its default
        hint, optional = _unwrap_optional(_hints(cls)[f.name])
        default = f.default
        value = getattr(msg, f.name)
        origin = typing.get_origin(hint)
        if origin is tuple:
            item = typing.get_args(hint)[0]
            if dataclasses.is_dataclass(item):
                kwargs[f.name] = tuple(from_message(item, v) for v in value)  # type: ignore[arg-type]
            else:
                kwargs[f.name] = tuple(_scalar(item, v, f.name, False, default) for v in value)
            continue
        is_message = descriptor.message_type is not None
        has_presence = is_message or descriptor.has_presence
        if has_presence and not msg.HasField(f.name):
            if default is not dataclasses.MISSING:
                kwargs[f.name] = default
            elif optional:
                kwargs[f.name] = None
            else:
                raise InvalidCommand(f"{f.name} is required")
            continue
        if hint is datetime:
            kwargs[f.name] = value.ToDatetime(tzinfo=UTC)
        elif hint is timedelta:
            kwargs[f.name] = value.ToTimedelta()
        elif dataclasses.is_dataclass(hint):
            kwargs[f.name] = from_message(hint, value)  # type: ignore[arg-type]
        else:
            kwargs[f.name] = _scalar(hint, value, f.name, optional, default)
    return cls(**kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def fill_message(msg: Message, obj: Any, skip: frozenset[str] = frozenset()) -> Message:
    """Copies the attributes of `obj` (dataclass fields and properties) into same-named fields."""
    for descriptor in msg.DESCRIPTOR.fields:
        name = descriptor.name
        if name in skip or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if value is None:
            continue
        target = getattr(msg, name)
        if descriptor.is_repeated:
            if descriptor.message_type is not None:
                for item in value:
                    fill_message(target.add(), item)
            else:
                target.extend(_plain(v) for v in value)
        elif isinstance(value, datetime):
            target.FromDatetime(value.astimezone(UTC))
        elif isinstance(value, timedelta):
            target.FromTimedelta(value)
        elif descriptor.message_type is not None:
            fill_message(target, value)
        else:
            setattr(msg, name, _plain(value))
    return msg


def timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


def duration(span: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(span)
    return d
