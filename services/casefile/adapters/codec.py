"""Translation between protobuf messages, domain dataclasses and stored JSON documents.

The proto messages mirror the domain dataclasses field by field (same names), so one generic
mapping serves every command and record: Timestamp <-> aware datetime, Duration <-> timedelta,
decimal text <-> Decimal, enum name <-> StrEnum, nested message <-> dataclass, repeated <->
tuple. Stored case documents are the domain's canonical JSON, read back with pydantic.

Every write re-encodes its case (stored document and gRPC reply), so the hot paths here work
from plans computed once per class or message type, and from an `EncodingMemo` per case that
keeps the encodings of the case's list fields across its versions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import secrets
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from operator import is_
from typing import Any, Generic, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import TypeAdapter

from casefile.domain.canonical import canonical_json, format_duration, format_instant, to_jsonable
from casefile.domain.custody import Position
from casefile.domain.errors import InvalidCommand
from casefile.domain.records import Case

_CASE = TypeAdapter(Case)
# Case fields holding a tuple of records (evidence, samples, ...): they grow with the case and
# their frozen items are shared between successive versions of it, so their encodings are kept.
LIST_FIELDS = frozenset(
    f.name
    for f in dataclasses.fields(Case)
    if typing.get_origin(typing.get_type_hints(Case)[f.name]) is tuple
    and dataclasses.is_dataclass(typing.get_args(typing.get_type_hints(Case)[f.name])[0])
)
_SORTED_LISTS = tuple(sorted(LIST_FIELDS))
# A stored document is spliced from a frame (the encoding of the fields that seldom change,
# kept while they stay the same objects) and the texts of the fields spliced into it: the
# version (new at every write) and the list fields (kept per field, see _ListEncoding).
_SPLICED = tuple(sorted({*LIST_FIELDS, "version"}))  # the canonical order of their members
_FRAMED = tuple(f.name for f in dataclasses.fields(Case) if f.name not in _SPLICED)
_framed_values = operator.attrgetter(*_FRAMED)

# ---- canonical JSON, fast ------------------------------------------------------------------

# json.dumps with these arguments builds this encoder on every call; canonical_json's output
# is exactly this encoder's.
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
# Stands in for each list field in the one encoding of a case's other fields; the per-process
# nonce keeps it out of real data, and a document is spliced only when the marker occurs once
# per list field (else the plain encoder runs).
_MARKER = f"casefile-list-{secrets.token_hex(16)}"
_QUOTED_MARKER = f'"{_MARKER}"'

_ZERO = timedelta(0)
_Converter = Callable[[Any], Any]
_CONVERTERS: dict[type, _Converter] = {}


def _jsonable(value: Any) -> Any:
    """`canonical.to_jsonable` with its type tests done once per type (the branch it takes
    depends on the value's type only); the same result, or the same error."""
    try:
        convert = _CONVERTERS[type(value)]
    except KeyError:
        convert = _CONVERTERS[type(value)] = _converter(type(value))
    return convert(value)


def _same(value: Any) -> Any:
    return value


def _float(value: float) -> Any:
    return value if math.isfinite(value) else to_jsonable(value)


def _decimal(value: Decimal) -> Any:
    return str(value) if value.is_finite() else to_jsonable(value)


def _instant(value: datetime) -> str:
    # at offset zero, isoformat is format_instant's text (with "+00:00" for "Z") from year
    # 1000 on (strftime's %Y does not pad smaller years to four digits)
    if (value.tzinfo is UTC or value.utcoffset() == _ZERO) and value.year >= 1000:
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    return format_instant(value)


def _date(value: date) -> str:
    return value.isoformat()


def _list(value: Any) -> list[Any]:
    return [_jsonable(item) for item in value]


def _converter(kind: type) -> _Converter:
    """The branch of to_jsonable that values of type `kind` take, in to_jsonable's order."""
    if kind is type(None) or issubclass(kind, bool | int | str):
        return _same
    if issubclass(kind, float):
        return _float
    if issubclass(kind, Decimal):
        return _decimal
    if issubclass(kind, Enum):
        return lambda value: _jsonable(value.value)
    if issubclass(kind, datetime):
        return _instant
    if issubclass(kind, date):
        return _date
    if issubclass(kind, timedelta):
        return format_duration
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind))
        return lambda value: {name: _jsonable(getattr(value, name)) for name in names}
    if kind is list or kind is tuple:
        return _list
    return to_jsonable  # mappings, subclasses of list/tuple, sets, the unencodable


def _item_json(item: Any) -> str:
    return _ENCODE(_jsonable(item))  # type: ignore[no-any-return]


# ---- the memo ------------------------------------------------------------------------------

_T = TypeVar("_T", str, bytes)


class _ListEncoding(Generic[_T]):
    """The encoding of one list field's last seen tuple: its items' encodings joined, and
    each item's own (by identity; an entry keeps its item alive, so its id is not reused)."""

    __slots__ = ("by_id", "items", "joined", "separator")

    def __init__(self, separator: _T) -> None:
        self.items: tuple[Any, ...] = ()
        self.joined: _T = separator[:0]
        self.separator: _T = separator
        self.by_id: dict[int, tuple[Any, _T]] = {}

    def encode(self, items: tuple[Any, ...], encode_item: Callable[[Any], _T]) -> _T:
        if type(items) is not tuple:  # only an immutable sequence may be recognised again
            return self.separator.join([encode_item(item) for item in items])
        previous = self.items
        if items is previous:
            return self.joined
        count = len(previous)
        by_id = self.by_id
        # the usual write appends to a tuple whose other items are the previous ones
        if len(items) >= count and all(map(is_, items, previous)):
            texts = []
            for item in items[count:]:
                hit = by_id.get(id(item))
                if hit is None or hit[0] is not item:
                    hit = by_id[id(item)] = (item, encode_item(item))
                texts.append(hit[1])
            joined = self.separator.join(texts)
            if count:
                joined = self.joined + self.separator + joined if texts else self.joined
        else:
            fresh: dict[int, tuple[Any, _T]] = {}
            texts = []
            for item in items:
                hit = by_id.get(id(item))
                if hit is None or hit[0] is not item:
                    hit = (item, encode_item(item))
                fresh[id(item)] = hit
                texts.append(hit[1])
            joined = self.separator.join(texts)
            self.by_id = fresh
        self.items, self.joined = items, joined
        return joined


class EncodingMemo:
    """Encodings of one case, kept across its versions: successive versions share their
    unchanged values (frozen records, tuples, strings, the same objects), so a write encodes
    only what is new. Relies on those values being immutable all the way down, as the
    domain's frozen dataclasses and tuples are."""

    def __init__(self) -> None:
        self.json: dict[str, _ListEncoding[str]] = {n: _ListEncoding(",") for n in LIST_FIELDS}
        self.proto: dict[str, _ListEncoding[bytes]] = {n: _ListEncoding(b"") for n in LIST_FIELDS}
        # the framed values of the last document and its frame: the text between the spliced
        # members' values (list brackets included), len(_SPLICED) + 1 pieces
        self.framed: tuple[Any, ...] | None = None
        self.frame: list[str] = []


_MARKED = dict.fromkeys(_SPLICED, _MARKER)


def _frame(case: Case, memo: EncodingMemo) -> list[str] | None:
    values = _framed_values(case)
    framed = memo.framed
    if framed is not None and all(map(is_, values, framed)):
        return memo.frame
    members = dict(zip(_FRAMED, map(_jsonable, values), strict=True))
    members.update(_MARKED)
    frame = _ENCODE(members).split(_QUOTED_MARKER)
    if len(frame) != len(_SPLICED) + 1:
        return None  # a value holds the marker text
    for i, name in enumerate(_SPLICED):
        if name in LIST_FIELDS:
            frame[i] += "["
            frame[i + 1] = "]" + frame[i + 1]
    memo.framed, memo.frame = values, frame
    return frame


def case_to_doc(case: Case, memo: EncodingMemo | None = None) -> str:
    """The canonical JSON of `case`; with a memo, byte-identical but spliced: the kept frame
    (see `_SPLICED`) with the version and the list fields' kept encodings put in (canonical
    JSON of an object is its sorted members, so they come in sorted order)."""
    if memo is None:
        return canonical_json(case)
    try:
        frame = _frame(case, memo)
        if frame is None:
            return canonical_json(case)
        lists = memo.json
        texts = []
        for name in _SPLICED:
            value = getattr(case, name)
            if name == "version":
                texts.append(repr(value) if type(value) is int else _item_json(value))
                continue
            cached = lists[name]
            texts.append(
                cached.joined if value is cached.items else cached.encode(value, _item_json)
            )
    except ValueError:
        return canonical_json(case)  # raises the plain encoder's own error
    out = [""] * (len(frame) + len(texts))
    out[0::2] = frame  # the frame's pieces with the spliced texts between them
    out[1::2] = texts
    return "".join(out)


def list_field_chunks(message_type: type[Message], case: Case, memo: EncodingMemo) -> bytes:
    """The wire encoding of the list fields of `case` as fields of `message_type`.

    Protobuf parses concatenated encodings as one message and keeps repeated items in order,
    so the reply is the encoding of the scalar part followed by these cached chunks."""
    lists = memo.proto
    chunks = []
    for name in _SORTED_LISTS:
        items = getattr(case, name)
        cached = lists[name]
        if items is cached.items:
            chunks.append(cached.joined)
            continue
        encode = _ITEM_WIRE.get((message_type, name))
        if encode is None:
            encode = _ITEM_WIRE[message_type, name] = _item_wire(message_type, name)
        chunks.append(cached.encode(items, encode))
    return b"".join(chunks)


_ITEM_WIRE: dict[tuple[type[Message], str], Callable[[Any], bytes]] = {}


def _item_wire(message_type: type[Message], name: str) -> Callable[[Any], bytes]:
    def encode(item: Any) -> bytes:
        holder = message_type()
        fill_message(getattr(holder, name).add(), item)
        return holder.SerializeToString()

    return encode


def case_from_doc(doc: str) -> Case:
    return _CASE.validate_json(doc)


# ---- messages -> dataclasses ---------------------------------------------------------------


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


_TIMESTAMP_MIN, _TIMESTAMP_MAX = -62135596800, 253402300799  # protobuf's valid range
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_datetime(value: Timestamp) -> datetime:
    seconds, nanos = value.seconds, value.nanos
    if _TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX and 0 <= nanos < 1_000_000_000:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    return value.ToDatetime(tzinfo=UTC)  # raises protobuf's own error


# How from_message builds one dataclass field from its message field.
_TUPLE_OF_RECORDS, _TUPLE_OF_SCALARS, _DATETIME, _TIMEDELTA, _RECORD, _SCALAR, _TEXT = range(7)


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    how: int
    hint: Any  # the item type for tuples
    optional: bool
    default: Any
    has_presence: bool
    members: dict[Any, Any] | None  # an enum's value -> member map


@cache
def _from_plan(cls: type, descriptor: Any, skip: frozenset[str]) -> tuple[_FieldPlan, ...]:
    fields = descriptor.fields_by_name
    plan = []
    for f in dataclasses.fields(cls):
        field = fields.get(f.name)
        if f.name in skip or field is None:
            continue  # a domain field the API does not carry keeps its default
        hint, optional = _unwrap_optional(_hints(cls)[f.name])
        how = _SCALAR
        if typing.get_origin(hint) is tuple:
            hint = typing.get_args(hint)[0]
            how = _TUPLE_OF_RECORDS if dataclasses.is_dataclass(hint) else _TUPLE_OF_SCALARS
        elif hint is datetime:
            how = _DATETIME
        elif hint is timedelta:
            how = _TIMEDELTA
        elif dataclasses.is_dataclass(hint):
            how = _RECORD
        elif hint is str and not optional and not field.has_presence:
            how = _TEXT
        members = None
        if isinstance(hint, type) and issubclass(hint, Enum):
            members = dict(hint._value2member_map_)
        has_presence = field.message_type is not None or field.has_presence
        plan.append(_FieldPlan(f.name, how, hint, optional, f.default, has_presence, members))
    return tuple(plan)


def _enum(plan: _FieldPlan, value: Any) -> Any:
    if value != "" and plan.members is not None:
        try:
            return plan.members[value]
        except (KeyError, TypeError):
            pass  # the enum's own lookup (and its error message) decides
    return _scalar(plan.hint, value, plan.name, plan.optional, plan.default)


def _checked(record: Any, name: str) -> Any:
    """Records whose values the wire cannot constrain: a position must be a real place
    (proto3 sends `position: {}` as 0, 0, which is no place in China and never a reading)."""
    if isinstance(record, Position):
        lat, lon = record.lat, record.lon
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise InvalidCommand(f"{name}: latitude and longitude must be numbers")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise InvalidCommand(f"{name}: ({lat}, {lon}) is out of range (-90..90, -180..180)")
        if lat == 0.0 and lon == 0.0:
            raise InvalidCommand(f"{name}: latitude and longitude are required (got 0, 0)")
    return record


def from_message(cls: type, msg: Message, *, skip: frozenset[str] = frozenset()) -> Any:
    """Builds dataclass `cls` from a message whose fields carry the same names."""
    kwargs: dict[str, Any] = {}
    for plan in _from_plan(cls, msg.DESCRIPTOR, skip):
        name = plan.name
        value = getattr(msg, name)
        how = plan.how
        if how is _TEXT:
            kwargs[name] = value
            continue
        if how is _TUPLE_OF_RECORDS:
            kwargs[name] = tuple(from_message(plan.hint, v) for v in value)
            continue
        if how is _TUPLE_OF_SCALARS:
            hint, default = plan.hint, plan.default
            kwargs[name] = tuple(_scalar(hint, v, name, False, default) for v in value)
            continue
        if plan.has_presence and not msg.HasField(name):
            if plan.default is not dataclasses.MISSING:
                kwargs[name] = plan.default
            elif plan.optional:
                kwargs[name] = None
            else:
                raise InvalidCommand(f"{name} is required")
            continue
        if how is _DATETIME:
            kwargs[name] = _to_datetime(value)
        elif how is _TIMEDELTA:
            kwargs[name] = value.ToTimedelta()
        elif how is _RECORD:
            kwargs[name] = _checked(from_message(plan.hint, value), name)
        elif plan.members is not None:
            kwargs[name] = _enum(plan, value)
        else:
            kwargs[name] = _scalar(plan.hint, value, name, plan.optional, plan.default)
    return cls(**kwargs)


# ---- dataclasses -> messages ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


_PLAIN_TYPES = frozenset({str, int, bool, float, bytes})
# How fill_message copies one attribute into its message field.
_REPEATED_MESSAGES, _REPEATED_SCALARS, _TIMESTAMP, _MESSAGE, _SCALAR_FIELD = range(5)


_FillPlan = tuple[tuple[str, int], ...]
_FILL_PLANS: dict[tuple[Any, type, frozenset[str]], _FillPlan] = {}


def _fill_plan(descriptor: Any, kind: type, skip: frozenset[str]) -> _FillPlan:
    """The message fields `fill_message` may copy from objects of type `kind`: for a
    dataclass (without __getattr__), those named by its fields or class attributes
    (properties); for any other type, all of them."""
    names: set[str] | None = None
    if dataclasses.is_dataclass(kind) and not hasattr(kind, "__getattr__"):
        names = {f.name for f in dataclasses.fields(kind)}
    plan = []
    for field in descriptor.fields:
        name = field.name
        if name in skip or (names is not None and name not in names and not hasattr(kind, name)):
            continue
        if field.is_repeated:
            how = _REPEATED_MESSAGES if field.message_type is not None else _REPEATED_SCALARS
        elif field.message_type is None:
            how = _SCALAR_FIELD
        elif field.message_type.full_name == Timestamp.DESCRIPTOR.full_name:
            how = _TIMESTAMP
        else:
            how = _MESSAGE
        plan.append((name, how))
    return tuple(plan)


_ABSENT: Any = object()


def fill_message(msg: Message, obj: Any, skip: frozenset[str] = frozenset()) -> Message:
    """Copies the attributes of `obj` (dataclass fields and properties) into same-named fields."""
    # the tests on `value` come in the order of the generic mapping (datetime, timedelta,
    # nested message, scalar), so a mistyped value fails the same way
    key = (msg.DESCRIPTOR, type(obj), skip)
    plan = _FILL_PLANS.get(key)
    if plan is None:
        plan = _FILL_PLANS[key] = _fill_plan(*key)
    for name, how in plan:
        value = getattr(obj, name, _ABSENT)
        if value is None or value is _ABSENT:
            continue
        if how is _SCALAR_FIELD and type(value) in _PLAIN_TYPES:
            setattr(msg, name, value)
        elif how is _REPEATED_MESSAGES:
            target = getattr(msg, name)
            for item in value:
                fill_message(target.add(), item)
        elif how is _REPEATED_SCALARS:
            getattr(msg, name).extend([_plain(v) for v in value])
        elif isinstance(value, datetime):
            target = getattr(msg, name)
            if how is _TIMESTAMP and (value.tzinfo is UTC or value.utcoffset() == _ZERO):
                # FromDatetime's result: whole seconds since the epoch, and the micros
                delta = value - _EPOCH
                target.seconds = delta.days * 86400 + delta.seconds
                target.nanos = delta.microseconds * 1000
            else:
                target.FromDatetime(value.astimezone(UTC))
        elif isinstance(value, timedelta):
            getattr(msg, name).FromTimedelta(value)
        elif how is not _SCALAR_FIELD:
            fill_message(getattr(msg, name), value)
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
