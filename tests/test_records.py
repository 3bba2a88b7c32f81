"""infra.records: a Record writes itself as a JSON object in field order and reads itself back, including
nested records, renamed keys, optional fields and fields with a default."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from couponmix.infra.records import OPTIONAL, Record, json_key, optional_unless


@dataclass(kw_only=True)
class Point(Record):
    x: float
    y: float | None = field(default=None, metadata=OPTIONAL)


@dataclass(kw_only=True)
class Line(Record):
    reachable: bool
    points: list[Point]
    by_name: dict[str, Point]
    global_: list[float] = field(metadata=json_key("global"))
    worst: float | None = field(default=None, metadata=optional_unless("reachable"))
    extra: list[int] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Grid(Record):
    values: np.ndarray
    size: int


def test_a_record_round_trips_through_json_in_field_order():
    line = Line(reachable=True, points=[Point(x=1.0), Point(x=2.0, y=3.0)], by_name={"a": Point(x=4.0)}, global_=[0.5])
    doc = line.to_dict()
    assert list(doc) == ["reachable", "points", "by_name", "global", "worst", "extra"]
    assert doc["points"] == [{"x": 1.0}, {"x": 2.0, "y": 3.0}]  # an optional None is left out
    assert doc["worst"] is None  # written as null while reachable
    assert Line.from_dict(json.loads(json.dumps(doc))) == line


def test_optional_fields_and_defaults_may_be_absent_but_required_ones_may_not():
    unreachable = Line(reachable=False, points=[], by_name={}, global_=[])
    assert "worst" not in unreachable.to_dict()
    assert Line.from_dict({"reachable": False, "points": [], "by_name": {}, "global": []}) == unreachable  # extra: its default
    with pytest.raises(ValueError, match="the key 'global' is missing"):
        Line.from_dict({"reachable": False, "points": [], "by_name": {}})
    with pytest.raises(ValueError, match="expected a JSON object"):
        Point.from_dict([1, 2])


def test_array_fields_are_written_as_lists_and_read_back_as_arrays():
    grid = Grid(values=np.array([[0.5, 1.0], [2.0, 3.0]]), size=np.int64(2))
    doc = grid.to_dict()
    assert doc == {"values": [[0.5, 1.0], [2.0, 3.0]], "size": 2} and type(doc["size"]) is int
    back = Grid.from_dict(json.loads(json.dumps(doc)))
    assert isinstance(back.values, np.ndarray)
    np.testing.assert_array_equal(back.values, grid.values)
