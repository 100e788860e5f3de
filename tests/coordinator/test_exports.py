"""The export formats, read back with the parsers their receivers use (json, csv, XML).

The expected values come from docs/protocol.md section 11 and the format
specifications (RFC 7946, HXL, CoT 2.0 as ATAK writes it, CAP 1.2, PFIF 1.4),
not from the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire.coordinator import exports
from signalfire.coordinator.exports import ExportContext, clean_text, render
from signalfire.coordinator.feed_model import FeedReceipt, FeedReport, Mark

T0 = 1_795_860_000  # 2026-11-28T10:00:00Z
CTX = ExportContext(now=T0 + 3600, coordinator="Relief North")
ALICE = "a1b2c3d4e5f60718"
BOB = "0011223344556677"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
PFIF = "{http://zesty.ca/pfif/1.4}"

# docs/protocol.md section 11, copied by hand: status -> PFIF note status,
# CAP msgType/category/urgency/severity/certainty, CoT type, HXL severity.
TABLE: dict[str, tuple[str | None, tuple[str, ...], str, str]] = {
    "safe": ("is_note_author", ("Alert", "Safety", "Past", "Minor", "Observed"), "a-n-G", "low"),
    "sos": (
        "is_note_author",
        ("Alert", "Rescue", "Immediate", "Extreme", "Observed"),
        "b-a-o-tbl",
        "critical",
    ),
    "medical": (
        "is_note_author",
        ("Alert", "Health", "Immediate", "Severe", "Observed"),
        "b-r-f-h-c",
        "critical",
    ),
    "trapped": (
        "is_note_author",
        ("Alert", "Rescue", "Immediate", "Extreme", "Observed"),
        "b-a-o-tbl",
        "critical",
    ),
    "evacuate": (
        "is_note_author",
        ("Alert", "Rescue", "Expected", "Severe", "Observed"),
        "b-r-f-h-c",
        "high",
    ),
    "need-supplies": (
        "is_note_author",
        ("Alert", "Safety", "Expected", "Moderate", "Observed"),
        "b-m-p-s-m",
        "medium",
    ),
    "missing-person": (
        "believed_missing",
        ("Alert", "Rescue", "Expected", "Severe", "Possible"),
        "b-m-p-s-m",
        "high",
    ),
    "cancel": (None, ("Cancel",), "b-a-o-can", "low"),
}

HOSTILE = "=cmd|' /C calc'!A0 <b>&amp; ]]> \x00\x07\x1b\r\nПомогите! Օգնեք! \ufffe end"


def report(n: int, status: str, **kw: Any) -> FeedReport:
    fields: dict[str, Any] = {
        "id": f"{n:032x}",
        "kind": "report",
        "priority": "life-safety",
        "status": status,
        "people": 2,
        "needs": (),
        "lat": 40.1776121,
        "lon": 44.5126059,
        "accuracy_m": 25.0,
        "coarse": False,
        "precision_m": None,
        "text": None,
        "sender": ALICE,
        "key_id": ALICE,
        "seq": n,
        "created_at": T0 + 60 * n,
        "received_at": T0 + 60 * n + 4.5,
    }
    fields.update(kw)
    return FeedReport(**fields)


def one_of_each() -> list[FeedReport]:
    """Every status once, each from its own sender, all with exact positions."""
    return [
        report(i + 1, status, sender=f"{i + 1:016x}", key_id=f"{i + 1:016x}")
        for i, status in enumerate(TABLE)
    ]


def scenario() -> list[FeedReport]:
    """The cases of the brief, newest first (as a feed lists them)."""
    sos = report(
        1,
        "sos",
        needs=("medicine", "water"),
        text="Под завалами, 2 человека",
        receipts=(FeedReceipt("9f8e7d6c5b4a3928", "gw-north", "mqtt", T0 + 61.0),),
    )
    safe = report(2, "safe", sender=BOB, key_id=BOB, priority="routine", people=4)
    medical = report(3, "medical", sender=BOB, key_id=BOB, text="Insulin")
    cancel = report(4, "cancel", lat=None, lon=None, accuracy_m=None, text="Մենք ապահով ենք")
    missing = report(
        5,
        "missing-person",
        sender="node-1a2b3c4d",
        key_id="9f8e7d6c5b4a3928",
        kind="attested",
        people=1,
        text="Anna Petrosyan, 8, red coat",
        node_num=0x1A2B3C4D,
    )
    nowhere = report(6, "need-supplies", lat=None, lon=None, accuracy_m=None, needs=("food",))
    coarse = report(7, "trapped", sender=BOB, key_id=BOB).coarsened(1000.0)
    return [coarse, nowhere, missing, cancel, medical, safe, sos]


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def csv_rows(data: bytes) -> list[dict[str, str]]:
    rows = parse_csv(data)
    tags = rows[1]
    return [dict(zip(tags, row, strict=True)) for row in rows[2:]]


def cot_events(data: bytes) -> list[ET.Element]:
    assert b"<?xml" not in data  # a TAK stream repeats no declaration
    assert data == b"" or data.endswith(b"</event>\n")
    # One event per LF-terminated line (bytes.split: U+0085 and U+2028 are text here).
    return [ET.fromstring(line) for line in data.split(b"\n") if line]


def attr(el: ET.Element, path: str, name: str) -> str | None:
    found = el.find(path)
    assert found is not None, path
    return found.get(name)


def cap_alerts(data: bytes) -> list[ET.Element]:
    feed = ET.fromstring(data)
    assert feed.tag == f"{ATOM}feed"
    alerts = []
    for entry in feed.iter(f"{ATOM}entry"):
        content = entry.find(f"{ATOM}content")
        assert content is not None
        assert content.get("type") == "application/cap+xml"
        (alert,) = list(content)
        alerts.append(alert)
    return alerts


def cap_by_id(data: bytes) -> dict[str, ET.Element]:
    return {a.findtext(f"{CAP}identifier", ""): a for a in cap_alerts(data)}


def pfif_persons(data: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(data)
    assert root.tag == f"{PFIF}pfif"
    return {p.findtext(f"{PFIF}person_record_id", ""): p for p in root.findall(f"{PFIF}person")}


def pfif_notes(data: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(data)
    return {n.findtext(f"{PFIF}note_record_id", ""): n for n in root.iter(f"{PFIF}note")}


def note_id(r: FeedReport) -> str:
    return f"relief-north/note.{r.id}"


# --------------------------------------------------------------------------
# registry


def test_registry_names_media_types_and_extensions() -> None:
    assert set(exports.FORMATS) == {"geojson", "csv", "cot", "cap", "pfif"}
    assert exports.FORMATS["geojson"].media_type == "application/geo+json"
    assert exports.FORMATS["csv"].media_type == "text/csv; charset=utf-8"
    assert exports.FORMATS["cap"].media_type == "application/atom+xml"
    for name, fmt in exports.FORMATS.items():
        assert fmt.name == name
        assert re.fullmatch(r"[a-z]+", fmt.extension)
        assert fmt.render(scenario(), CTX) == render(name, scenario(), CTX)


def test_unknown_format_is_a_value_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="kml") as err:
        render("kml", scenario(), CTX)
    for name in exports.FORMATS:
        assert name in str(err.value)


def test_exports_are_pure_functions_of_reports_and_context() -> None:
    for name in exports.FORMATS:
        assert render(name, scenario(), CTX) == render(name, scenario(), CTX)
    later = replace(CTX, now=CTX.now + 3600)
    # Only the generation time moves: CoT stale and the Atom feed's updated.
    assert render("geojson", scenario(), later) == render("geojson", scenario(), CTX)
    assert render("csv", scenario(), later) == render("csv", scenario(), CTX)
    assert render("pfif", scenario(), later) == render("pfif", scenario(), CTX)


def test_empty_exports_are_valid_documents() -> None:
    assert json.loads(render("geojson", [], CTX)) == {"type": "FeatureCollection", "features": []}
    assert len(parse_csv(render("csv", [], CTX))) == 2
    assert render("cot", [], CTX) == b""
    assert cap_alerts(render("cap", [], CTX)) == []
    assert pfif_persons(render("pfif", [], CTX)) == {}


def test_context_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="coordinator"):
        ExportContext(now=T0, coordinator="  ")
    with pytest.raises(ValueError, match="now"):
        ExportContext(now=float("nan"), coordinator="x")
    with pytest.raises(ValueError, match="stale"):
        ExportContext(now=T0, coordinator="x", cot_stale_s=0)


# --------------------------------------------------------------------------
# GeoJSON


def test_geojson_is_rfc7946_lon_lat_and_null_geometry_without_position() -> None:
    reports = scenario()
    doc = json.loads(render("geojson", reports, CTX))
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    features = doc["features"]
    assert [f["id"] for f in features] == [r.id for r in reports]
    by_id = {f["id"]: f for f in features}
    sos = by_id[reports[-1].id]
    assert sos["type"] == "Feature"
    assert sos["geometry"] == {"type": "Point", "coordinates": [44.5126059, 40.1776121]}
    assert by_id[reports[1].id]["geometry"] is None  # need-supplies, no position
    assert by_id[reports[3].id]["geometry"] is None  # cancel, no position
    props = sos["properties"]
    assert props["status"] == "sos"
    assert props["needs"] == ["medicine", "water"]
    assert props["text"] == "Под завалами, 2 человека"
    assert props["created_at"] == "2026-11-28T10:01:00Z"
    assert props["received_at"] == "2026-11-28T10:01:04Z"
    assert props["gateways"] == ["gw-north"]
    assert props["coarse"] is False
    assert props["accuracy_m"] == 25.0
    assert {
        "id",
        "status",
        "priority",
        "people",
        "needs",
        "text",
        "sender",
        "created_at",
        "received_at",
        "state",
        "coarse",
        "precision_m",
        "accuracy_m",
        "flags",
        "gateways",
        "kind",
    } <= set(props)


def test_geojson_marks_coarse_positions_and_rounds_to_7_decimals() -> None:
    coarse = scenario()[0]
    fine = report(9, "sos", lat=-33.123456789012, lon=151.987654321098)
    doc = json.loads(render("geojson", [coarse, fine], CTX))
    c, f = doc["features"]
    assert c["properties"]["coarse"] is True
    assert coarse.precision_m is not None
    assert coarse.precision_m > 700
    assert c["properties"]["precision_m"] == coarse.precision_m
    assert c["properties"]["accuracy_m"] is None
    assert f["geometry"]["coordinates"] == [151.9876543, -33.1234568]


def test_geojson_is_utf8_not_ascii_escapes() -> None:
    data = render("geojson", scenario(), CTX)
    assert "Под завалами".encode() in data
    assert "Մենք".encode() in data


def test_geojson_handles_state_and_flags() -> None:
    r = replace(report(1, "sos"), flags=("future-time",), mark=Mark("assigned", "team 3", "op", T0))
    (f,) = json.loads(render("geojson", [r], CTX))["features"]
    assert f["properties"]["state"] == "assigned"
    assert f["properties"]["flags"] == ["future-time"]


# --------------------------------------------------------------------------
# CSV + HXL


def test_csv_has_readable_header_then_hxl_row_with_the_protocol_columns() -> None:
    rows = parse_csv(render("csv", scenario(), CTX))
    header, tags = rows[0], rows[1]
    assert len(header) == len(tags)
    assert all(not h.startswith("#") for h in header)
    for tag in (
        "#date+reported",
        "#geo+lat",
        "#geo+lon",
        "#geo+accuracy",
        "#status",
        "#severity",
        "#item+need",
        "#affected+ind",
        "#description",
        "#meta+id",
        "#meta+sender",
        "#meta+seq",
    ):
        assert tag in tags
    assert all(re.fullmatch(r"#[a-z][a-z0-9_]*(\+[a-z][a-z0-9_]*)*", t) for t in tags)
    assert len(rows) == 2 + len(scenario())


@pytest.mark.parametrize("status", list(TABLE))
def test_csv_status_and_severity_follow_the_table(status: str) -> None:
    (row,) = csv_rows(render("csv", [report(1, status)], CTX))
    assert row["#status"] == status
    assert row["#severity"] == TABLE[status][3]


def test_csv_values() -> None:
    reports = scenario()
    rows = {row["#meta+id"]: row for row in csv_rows(render("csv", reports, CTX))}
    sos = rows[reports[-1].id]
    assert sos["#date+reported"] == "2026-11-28T10:01:00Z"
    assert (sos["#geo+lat"], sos["#geo+lon"]) == ("40.1776121", "44.5126059")
    assert sos["#geo+accuracy"] == "25"
    assert sos["#item+need"] == "medicine|water"
    assert sos["#affected+ind"] == "2"
    assert sos["#description"] == "Под завалами, 2 человека"
    assert sos["#meta+sender"] == ALICE
    assert sos["#meta+seq"] == "1"
    assert sos["#geo+coarse"] == "no"
    nowhere = rows[reports[1].id]
    assert nowhere["#geo+lat"] == nowhere["#geo+lon"] == nowhere["#geo+coarse"] == ""
    coarse = rows[reports[0].id]
    assert coarse["#geo+coarse"] == "yes"
    assert coarse["#geo+precision"] == str(reports[0].precision_m).removesuffix(".0")
    assert coarse["#geo+accuracy"] == ""


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_never_starts_a_cell_with_a_formula_character(lead: str) -> None:
    text = lead + 'HYPERLINK("http://evil.example","click")'
    (row,) = csv_rows(render("csv", [report(1, "sos", text=text)], CTX))
    cell = row["#description"]
    assert cell.startswith("'")
    assert cell[1:] == clean_text(text)


def test_csv_formula_guard_covers_every_text_cell() -> None:
    r = report(
        1,
        "sos",
        sender="=1+1",
        receipts=(FeedReceipt("k", "@SUM(A1)", "http", None),),
        flags=("-x",),
    )
    (row,) = csv_rows(render("csv", [r], CTX))
    for tag in ("#meta+sender", "#meta+gateways", "#meta+flags"):
        assert row[tag].startswith("'"), tag
    # A negative coordinate is a number, not a formula: it stays as it is.
    (row,) = csv_rows(render("csv", [report(1, "sos", lat=-33.5, lon=-70.25)], CTX))
    assert (row["#geo+lat"], row["#geo+lon"]) == ("-33.5", "-70.25")


def test_csv_plain_text_is_untouched() -> None:
    (row,) = csv_rows(render("csv", [report(1, "sos", text='a "quoted", multi\nline')], CTX))
    assert row["#description"] == 'a "quoted", multi\nline'


def test_csv_is_utf8_with_a_bom_unless_asked_not_to() -> None:
    data = render("csv", scenario(), CTX)
    assert data.startswith(b"\xef\xbb\xbf")
    assert "Մենք ապահով ենք".encode() in data
    plain = render("csv", scenario(), replace(CTX, csv_bom=False))
    assert plain == data[3:]
    assert plain.startswith(b"Reported at")
    assert b"\r\n#date+reported," in plain  # the HXL row is row 2, unaffected by the BOM


# --------------------------------------------------------------------------
# CoT


@pytest.mark.parametrize("status", list(TABLE))
def test_cot_type_follows_the_table(status: str) -> None:
    (event,) = cot_events(render("cot", [report(1, status)], CTX))
    assert event.tag == "event"
    assert event.get("version") == "2.0"
    assert event.get("type") == TABLE[status][2]


def test_cot_sos_carries_the_emergency_detail_tak_uses() -> None:
    sos = scenario()[-1]
    (event,) = cot_events(render("cot", [sos], CTX))
    assert event.get("uid") == f"signalfire-{ALICE}-9-1-1"
    assert event.get("how") == "m-g"
    assert event.get("time") == event.get("start") == "2026-11-28T10:01:00Z"
    assert event.get("stale") == "2026-11-29T11:00:00Z"  # ctx.now + 24 h
    point = event.find("point")
    assert point is not None
    assert (point.get("lat"), point.get("lon")) == ("40.1776121", "44.5126059")
    assert point.get("ce") == "25"
    assert point.get("hae") == point.get("le") == "9999999.0"
    emergency = event.find("detail/emergency")
    assert emergency is not None
    assert emergency.get("type") == "911 Alert"
    assert emergency.text == ALICE[:8]
    assert attr(event, "detail/contact", "callsign") == f"{ALICE[:8]}-Alert"
    remarks = event.findtext("detail/remarks", "")
    assert "SOS" in remarks
    assert "2 people" in remarks
    assert "medicine, water" in remarks
    assert "Под завалами, 2 человека" in remarks


def test_cot_cancel_clears_the_same_uid_and_comes_after_the_alert() -> None:
    events = cot_events(render("cot", scenario(), CTX))
    alice = [e for e in events if e.get("uid") == f"signalfire-{ALICE}-9-1-1"]
    assert [e.get("type") for e in alice] == ["b-a-o-tbl", "b-a-o-can"]
    cancel = alice[1]
    emergency = cancel.find("detail/emergency")
    assert emergency is not None
    assert emergency.get("cancel") == "true"
    # The cancel had no position of its own: it borrows the alert's.
    point = cancel.find("point")
    assert point is not None
    assert (point.get("lat"), point.get("lon")) == ("40.1776121", "44.5126059")
    assert point.get("ce") == "9999999.0"


def test_cot_events_are_oldest_first_and_skip_reports_without_position() -> None:
    reports = scenario()
    events = cot_events(render("cot", reports, CTX))
    times = [e.get("time", "") for e in events]
    assert times == sorted(times)
    ids = [attr(e, "detail/__signalfire", "id") for e in events]
    nowhere = reports[1]
    assert nowhere.id not in ids
    assert len(events) == len(reports) - 1  # the positionless cancel is still sent


def test_cot_uids_are_stable_and_pli_is_per_sender() -> None:
    first = cot_events(render("cot", scenario(), CTX))
    again = cot_events(render("cot", scenario(), replace(CTX, now=CTX.now + 86400)))
    assert [e.get("uid") for e in first] == [e.get("uid") for e in again]
    assert len({e.get("uid") for e in first}) == len(first) - 1  # only the cancel reuses one
    moved = [
        report(1, "safe", sender=BOB),
        report(2, "safe", sender=BOB, lat=40.2, lon=44.6),
        report(3, "safe", sender=ALICE),
    ]
    events = cot_events(render("cot", moved, CTX))
    assert [e.get("uid") for e in events] == [
        f"signalfire-{BOB}",
        f"signalfire-{BOB}",
        f"signalfire-{ALICE}",
    ]
    markers = cot_events(render("cot", [report(1, "medical"), report(2, "medical")], CTX))
    assert markers[0].get("uid") != markers[1].get("uid")
    assert markers[0].get("uid") == f"signalfire-{report(1, 'medical').id}"


def test_cot_marks_coarse_and_unknown_positions() -> None:
    coarse = scenario()[0]
    unknown = report(2, "medical", accuracy_m=None)
    ev_unknown, ev_coarse = cot_events(render("cot", [coarse, unknown], CTX))  # oldest first
    assert ev_coarse.get("type") == "b-a-o-tbl"
    assert ev_coarse.get("how") == "h-e"
    assert attr(ev_coarse, "point", "ce") == str(coarse.precision_m).removesuffix(".0")
    assert "APPROXIMATE" in ev_coarse.findtext("detail/remarks", "")
    marker = ev_coarse.find("detail/__signalfire")
    assert marker is not None
    assert marker.get("coarse") == "true"
    assert ev_unknown.get("how") == "h-e"
    assert attr(ev_unknown, "point", "ce") == "9999999.0"


def test_cot_single_event_is_an_xml_document() -> None:
    data = render("cot", [report(1, "sos")], CTX)
    assert ET.fromstring(data).tag == "event"


# --------------------------------------------------------------------------
# CAP 1.2


@pytest.mark.parametrize("status", list(TABLE))
def test_cap_follows_the_table(status: str) -> None:
    r = report(1, status)
    (alert,) = cap_alerts(render("cap", [r], CTX))
    expected = TABLE[status][1]
    assert alert.findtext(f"{CAP}msgType") == expected[0]
    assert alert.findtext(f"{CAP}status") == "Actual"
    assert alert.findtext(f"{CAP}scope") == "Restricted"
    assert alert.findtext(f"{CAP}restriction")
    if status != "cancel":
        info = alert.find(f"{CAP}info")
        assert info is not None
        got = tuple(
            info.findtext(f"{CAP}{name}")
            for name in ("category", "urgency", "severity", "certainty")
        )
        assert got == expected[1:]


def test_cap_alert_fields() -> None:
    sos = scenario()[-1]
    ctx = ExportContext(now=CTX.now, coordinator="Relief North, <&> HQ")
    (alert,) = cap_alerts(render("cap", [sos], ctx))
    identifier = alert.findtext(f"{CAP}identifier", "")
    sender = alert.findtext(f"{CAP}sender", "")
    assert sos.id in identifier
    for value in (identifier, sender):  # CAP 1.2: no spaces, commas, < or &
        assert not re.search(r"[\s,<&]", value), value
    assert alert.findtext(f"{CAP}sent") == "2026-11-28T10:01:00-00:00"
    info = alert.find(f"{CAP}info")
    assert info is not None
    assert info.findtext(f"{CAP}senderName") == "Relief North, <&> HQ"
    assert info.findtext(f"{CAP}event")
    assert "SOS" in info.findtext(f"{CAP}headline", "")
    assert "Под завалами, 2 человека" in info.findtext(f"{CAP}description", "")
    assert info.findtext(f"{CAP}area/{CAP}areaDesc")
    assert info.findtext(f"{CAP}area/{CAP}circle") == "40.1776121,44.5126059 0.025"


def test_cap_circle_radius_is_the_coarse_precision() -> None:
    coarse = scenario()[0]
    (alert,) = cap_alerts(render("cap", [coarse], CTX))
    circle = alert.findtext(f"{CAP}info/{CAP}area/{CAP}circle", "")
    point, radius = circle.split(" ")
    lat, lon = point.split(",")
    assert (float(lat), float(lon)) == (coarse.lat, coarse.lon)
    assert float(radius) == pytest.approx((coarse.precision_m or 0) / 1000)
    assert "APPROXIMATE" in alert.findtext(f"{CAP}info/{CAP}area/{CAP}areaDesc", "")
    assert "approximate" in alert.findtext(f"{CAP}info/{CAP}headline", "")


def test_cap_without_position_has_an_area_description_and_no_circle() -> None:
    (alert,) = cap_alerts(render("cap", [report(1, "sos", lat=None, lon=None)], CTX))
    area = alert.find(f"{CAP}info/{CAP}area")
    assert area is not None
    assert area.findtext(f"{CAP}areaDesc")
    assert area.find(f"{CAP}circle") is None


def test_cap_cancel_references_the_senders_earlier_open_alerts_only() -> None:
    reports = [
        report(1, "sos"),
        report(2, "trapped"),
        report(3, "medical", sender=BOB),  # someone else's
        report(4, "need-supplies"),  # not an emergency a cancel withdraws
        report(5, "cancel"),
        report(6, "medical"),
        report(7, "cancel"),
        report(8, "sos"),  # after the last cancel: still open
    ]
    alerts = cap_by_id(render("cap", reports, CTX))

    def refs(r: FeedReport) -> list[list[str]]:
        text = alerts[f"signalfire-{r.id}"].findtext(f"{CAP}references", "")
        return [ref.split(",") for ref in text.split()]

    def ref_of(r: FeedReport) -> list[str]:
        a = alerts[f"signalfire-{r.id}"]
        return [a.findtext(f"{CAP}{n}", "") for n in ("sender", "identifier", "sent")]

    assert refs(reports[4]) == [ref_of(reports[0]), ref_of(reports[1])]
    assert refs(reports[6]) == [ref_of(reports[5])]
    for r in reports:
        if r.status != "cancel":
            assert alerts[f"signalfire-{r.id}"].find(f"{CAP}references") is None


def test_cap_references_follow_time_not_feed_order() -> None:
    reports = scenario()  # newest first: the cancel is listed before the sos
    alerts = cap_by_id(render("cap", reports, CTX))
    cancel, sos = reports[3], reports[-1]
    assert alerts[f"signalfire-{cancel.id}"].findtext(f"{CAP}references") == (
        f"Relief-North,signalfire-{sos.id},2026-11-28T10:01:00-00:00"
    )


def test_cap_feed_is_atom_newest_first() -> None:
    feed = ET.fromstring(render("cap", scenario(), CTX))
    assert feed.findtext(f"{ATOM}updated") == "2026-11-28T11:00:00Z"
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "Relief North"
    feed_id = feed.findtext(f"{ATOM}id", "")
    assert feed_id.startswith("urn:uuid:")
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == len(scenario())
    updated = [e.findtext(f"{ATOM}updated", "") for e in entries]
    assert updated == sorted(updated, reverse=True)
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids)
    assert all(e.findtext(f"{ATOM}title") for e in entries)
    assert all(e.find(f"{ATOM}link") is None for e in entries)
    linked = ET.fromstring(
        render("cap", scenario(), replace(CTX, cap_alert_url="https://c.example/cap/{identifier}"))
    )
    link = linked.find(f"{ATOM}entry/{ATOM}link")
    assert link is not None
    assert link.get("type") == "application/cap+xml"
    assert link.get("href", "").startswith("https://c.example/cap/signalfire-")


def test_cap_single_alert_document_uses_the_cap_namespace_as_default() -> None:
    reports = scenario()
    cancel = reports[3]
    data = exports.render_cap_alert(cancel, reports, CTX)
    assert b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">' in data
    alert = ET.fromstring(data)
    assert alert.tag == f"{CAP}alert"
    assert alert.findtext(f"{CAP}msgType") == "Cancel"
    assert reports[-1].id in alert.findtext(f"{CAP}references", "")


# --------------------------------------------------------------------------
# PFIF 1.4


@pytest.mark.parametrize("status", list(TABLE))
def test_pfif_note_status_follows_the_table(status: str) -> None:
    r = report(1, status)
    notes = pfif_notes(render("pfif", [r], CTX))
    expected = TABLE[status][0]
    if expected is None:
        assert notes == {}
    else:
        assert notes[note_id(r)].findtext(f"{PFIF}status") == expected


def test_pfif_one_person_per_sender_with_their_own_notes() -> None:
    reports = scenario()
    data = render("pfif", reports, CTX)
    persons = pfif_persons(data)
    alice_id = f"relief-north/sender.{ALICE}"
    bob_id = f"relief-north/sender.{BOB}"
    assert alice_id in persons
    assert bob_id in persons
    alice = persons[alice_id]
    for required in ("person_record_id", "source_date", "full_name"):  # PFIF 1.4
        assert alice.findtext(f"{PFIF}{required}")
    assert alice.findtext(f"{PFIF}source_name") == "Relief North"
    alice_notes = {n.findtext(f"{PFIF}note_record_id") for n in alice.findall(f"{PFIF}note")}
    # sos and need-supplies are Alice's; her cancel is no note.
    assert alice_notes == {note_id(reports[-1]), note_id(reports[1])}
    bob_notes = [n.findtext(f"{PFIF}note_record_id") for n in persons[bob_id].iter(f"{PFIF}note")]
    assert bob_notes == [note_id(reports[5]), note_id(reports[4]), note_id(reports[0])]
    for note in ET.fromstring(data).iter(f"{PFIF}note"):
        for required in ("note_record_id", "author_name", "source_date", "entry_date"):
            assert note.findtext(f"{PFIF}{required}")


def test_pfif_missing_person_is_its_own_record_and_never_marks_the_sender_missing() -> None:
    reports = scenario()
    missing = reports[2]
    data = render("pfif", reports, CTX)
    persons = pfif_persons(data)
    record = persons[f"relief-north/missing.{missing.id}"]
    assert record.findtext(f"{PFIF}full_name") == "Anna Petrosyan, 8, red coat"
    (note,) = record.findall(f"{PFIF}note")
    assert note.findtext(f"{PFIF}status") == "believed_missing"
    assert note.findtext(f"{PFIF}author_name", "").endswith(missing.sender)
    assert "where the report was sent from" in note.findtext(f"{PFIF}text", "")
    assert f"relief-north/sender.{missing.sender}" not in persons
    for n in ET.fromstring(data).iter(f"{PFIF}note"):
        if n.findtext(f"{PFIF}status") == "believed_missing":
            assert "/missing." in n.findtext(f"{PFIF}person_record_id", "")


def test_pfif_dates_and_locations() -> None:
    reports = scenario()
    notes = pfif_notes(render("pfif", reports, CTX))
    sos = notes[note_id(reports[-1])]
    assert sos.findtext(f"{PFIF}source_date") == "2026-11-28T10:01:00Z"
    assert sos.findtext(f"{PFIF}entry_date") == "2026-11-28T10:01:04Z"
    assert sos.findtext(f"{PFIF}last_known_location") == "40.1776121, 44.5126059"
    assert "Под завалами" in sos.findtext(f"{PFIF}text", "")
    assert notes[note_id(reports[1])].find(f"{PFIF}last_known_location") is None
    coarse = notes[note_id(reports[0])].findtext(f"{PFIF}last_known_location", "")
    assert "APPROXIMATE" in coarse


def test_pfif_statuses_can_be_narrowed() -> None:
    ctx = replace(CTX, pfif_statuses=frozenset({"safe", "missing-person"}))
    notes = pfif_notes(render("pfif", scenario(), ctx))
    statuses = sorted(n.findtext(f"{PFIF}status", "") for n in notes.values())
    assert statuses == ["believed_missing", "is_note_author"]
    assert note_id(scenario()[5]) in notes  # Bob's safe


def test_pfif_uses_the_namespace_prefix_of_the_spec() -> None:
    data = render("pfif", scenario(), CTX)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert b'<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4">' in data
    domain = replace(CTX, domain="relief.example.org")
    assert f"relief.example.org/sender.{ALICE}" in pfif_persons(render("pfif", scenario(), domain))


# --------------------------------------------------------------------------
# hostile text, in every format


def test_clean_text() -> None:
    assert clean_text("a\r\nb\rc\nd\te") == "a\nb\nc\nd\te"
    assert clean_text("x\x00y\x1bz\ufffe\uffff\ud800") == "x\ufffdy\ufffdz\ufffd\ufffd\ufffd"
    assert clean_text("Օգնեք Помогите 🆘 <&]]>") == "Օգնեք Помогите 🆘 <&]]>"


def test_hostile_text_round_trips_through_every_xml_format() -> None:
    r = report(1, "sos", text=HOSTILE)
    m = report(2, "missing-person", text=HOSTILE)
    expected = clean_text(HOSTILE)
    assert "<b>&amp; ]]>" in expected
    assert "Помогите! Օգնեք!" in expected
    (event,) = cot_events(render("cot", [r], CTX))
    assert event.findtext("detail/remarks", "").endswith(expected)
    (alert,) = cap_alerts(render("cap", [r], CTX))
    assert alert.findtext(f"{CAP}info/{CAP}description", "").endswith(expected)
    notes = pfif_notes(render("pfif", [r, m], CTX))
    assert notes[note_id(r)].findtext(f"{PFIF}text", "").endswith(expected)
    (row,) = csv_rows(render("csv", [r], CTX))
    assert row["#description"] == "'" + expected
    (f,) = json.loads(render("geojson", [r], CTX))["features"]
    assert f["properties"]["text"] == HOSTILE  # JSON escapes controls; nothing is lost


def test_hostile_sender_and_coordinator_names_are_escaped() -> None:
    ctx = ExportContext(now=CTX.now, coordinator='Ops "North" <&>\x01')
    r = report(1, "safe", sender='"><x y="')
    (event,) = cot_events(render("cot", [r], ctx))
    assert event.get("uid") == 'signalfire-"><x y="'
    feed = ET.fromstring(render("cap", [r], ctx))
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == 'Ops "North" <&>\ufffd'
    persons = pfif_persons(render("pfif", [r], ctx))
    assert list(persons) == ['ops-north/sender."><x y="']


def all_parse(r: FeedReport) -> None:
    """Every format renders ``r`` and reads back with its text intact or cleaned."""
    expected = clean_text(r.text or "")
    (f,) = json.loads(render("geojson", [r], CTX))["features"]
    assert f["properties"]["text"] == r.text
    (row,) = csv_rows(render("csv", [r], CTX))
    assert row["#description"] == clean_text(exports.guard_formula(r.text or ""))
    (event,) = cot_events(render("cot", [r], CTX))
    assert event.findtext("detail/remarks", "").endswith(expected)
    (alert,) = cap_alerts(render("cap", [r], CTX))
    assert alert.findtext(f"{CAP}info/{CAP}description", "").endswith(expected)
    notes = pfif_notes(render("pfif", [r], CTX))
    assert notes[note_id(r)].findtext(f"{PFIF}text", "").endswith(expected)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(), status=st.sampled_from([s for s in TABLE if s != "cancel"]))
def test_any_text_survives_every_format(text: str, status: str) -> None:
    all_parse(report(1, status, text=text))


@settings(max_examples=50, deadline=None)
@given(
    texts=st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40), max_size=6),
    coarse=st.booleans(),
)
def test_any_batch_renders_well_formed(texts: Sequence[str], coarse: bool) -> None:
    reports = [
        report(i + 1, list(TABLE)[i % len(TABLE)], text=t, sender=f"{i % 3:016x}")
        for i, t in enumerate(texts)
    ]
    if coarse:
        reports = [r.coarsened(500.0) for r in reports]
    json.loads(render("geojson", reports, CTX))
    assert len(csv_rows(render("csv", reports, CTX))) == len(reports)
    assert len(cot_events(render("cot", reports, CTX))) == len(reports)
    assert len(cap_alerts(render("cap", reports, CTX))) == len(reports)
    ET.fromstring(render("pfif", reports, CTX))
