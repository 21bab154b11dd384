"""Cursor pagination of history lists (§2): ``from``, ``to``, ``limit`` (1–1000), ``cursor`` → ``{data, nextCursor}``.

Lists are newest first ([U]). The cursor is opaque: base64url of ``<ms>:<id>`` of the last item returned.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from lnmarkets.simulator.errors import bad_request
from lnmarkets.simulator.validation import parse_limit
from lnmarkets.simulator.wire import ms, parse_iso

T = TypeVar("T")
PAGE_PARAMS = frozenset({"from", "to", "limit", "cursor"})


def encode_cursor(moment: datetime, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ms(moment)}:{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, item_id = text.partition(":")
        return int(stamp), item_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request("Invalid cursor") from exc


def paginate(
    records: Sequence[tuple[datetime, str, T]],
    query: Mapping[str, str],
    render: Callable[[T], object],
) -> dict[str, object]:
    """``records`` are ``(time, id, item)``; they are sorted newest first here, then filtered and cut."""
    limit = parse_limit(query.get("limit"))
    start = parse_iso(query["from"]) if "from" in query else None
    end = parse_iso(query["to"]) if "to" in query else None
    after = decode_cursor(query["cursor"]) if "cursor" in query else None
    ordered = sorted(records, key=lambda r: (ms(r[0]), r[1]), reverse=True)
    data: list[object] = []
    last: tuple[datetime, str] | None = None
    more = False
    for moment, item_id, item in ordered:
        if (start is not None and moment < start) or (end is not None and moment > end):
            continue
        if after is not None and (ms(moment), item_id) >= after:
            continue
        if len(data) == limit:
            more = True
            break
        data.append(render(item))
        last = (moment, item_id)
    next_cursor = encode_cursor(*last) if more and last is not None else None
    return {"data": data, "nextCursor": next_cursor}
