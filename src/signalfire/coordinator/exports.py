"""The coordinator's export formats: GeoJSON, CSV with HXL, CoT, CAP 1.2 and PFIF 1.4.

Each renderer is a pure function of a list of :class:`FeedReport` and an
:class:`ExportContext` (generation time, coordinator identity, options) that
returns the bytes of one file; nothing here reads a clock, a database or a
file. ``render(name, reports, ctx)`` picks a format from :data:`FORMATS`.

The status mapping is the table in docs/protocol.md section 11; docs/exports.md
says what each format holds and which tools import it. Every format marks a
coarsened position (``FeedReport.coarse``) so that a receiver cannot mistake
a grid-cell centre for a fix, and every XML format is built with ElementTree
from text that :func:`clean_text` has made legal XML 1.0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .feed_model import FeedReport, iso

# --------------------------------------------------------------------------
# Context and registry


@dataclass(frozen=True)
class _StatusMap:
    """One row of docs/protocol.md section 11, plus the words people read."""

    pfif: str | None  # PFIF note status; None: not a PFIF note
    cap_category: str
    cap_urgency: str
    cap_severity: str
    cap_certainty: str
    cot_type: str
    hxl_severity: str
    event: str  # CAP <event>, and the first words of headlines and remarks


# docs/protocol.md section 11, row for row. The table's CAP column says
# nothing about a cancel's <info>; Past / Minor / Observed is what its sender
# is telling us (the emergency is over).
# fmt: off
_TABLE: tuple[tuple[str, _StatusMap], ...] = (
    # status                      PFIF note           category  urgency      severity    certainty   CoT type     HXL         event  # noqa: E501
    ("safe",           _StatusMap("is_note_author",   "Safety", "Past",      "Minor",    "Observed", "a-n-G",     "low",      "Safe")),  # noqa: E501
    ("sos",            _StatusMap("is_note_author",   "Rescue", "Immediate", "Extreme",  "Observed", "b-a-o-tbl", "critical", "SOS")),  # noqa: E501
    ("medical",        _StatusMap("is_note_author",   "Health", "Immediate", "Severe",   "Observed", "b-r-f-h-c", "critical", "Medical emergency")),  # noqa: E501
    ("trapped",        _StatusMap("is_note_author",   "Rescue", "Immediate", "Extreme",  "Observed", "b-a-o-tbl", "critical", "Trapped")),  # noqa: E501
    ("evacuate",       _StatusMap("is_note_author",   "Rescue", "Expected",  "Severe",   "Observed", "b-r-f-h-c", "high",     "Evacuation needed")),  # noqa: E501
    ("need-supplies",  _StatusMap("is_note_author",   "Safety", "Expected",  "Moderate", "Observed", "b-m-p-s-m", "medium",   "Supplies needed")),  # noqa: E501
    ("missing-person", _StatusMap("believed_missing", "Rescue", "Expected",  "Severe",   "Possible", "b-m-p-s-m", "high",     "Missing person")),  # noqa: E501
    ("cancel",         _StatusMap(None,               "Rescue", "Past",      "Minor",    "Observed", "b-a-o-can", "low",      "SOS withdrawn")),  # noqa: E501
)
# fmt: on
_STATUS: Mapping[str, _StatusMap] = MappingProxyType(dict(_TABLE))
# A status this module does not know (a later protocol version) still exports,
# as the least alarming thing that is not "nothing".
_UNKNOWN_STATUS = _StatusMap(
    None, "Other", "Unknown", "Unknown", "Unknown", "b-m-p-s-m", "unknown", "Report"
)
# What a later cancel from the same sender withdraws (CAP references).
_CANCELLABLE = frozenset({"sos", "trapped", "medical"})
# The PFIF notes the table defines: every status but cancel.
PFIF_STATUSES: frozenset[str] = frozenset(s for s, m in _STATUS.items() if m.pfif)

DEFAULT_CAP_RESTRICTION = (
    "For emergency coordinators and responders only. Unverified civilian reports "
    "with personal locations; do not publish."
)


def _status_map(status: str) -> _StatusMap:
    return _STATUS.get(status, _UNKNOWN_STATUS)


@dataclass(frozen=True)
class ExportContext:
    """Everything an export needs besides the reports; the caller owns the clock."""

    now: float  # Unix seconds: generation time
    coordinator: str  # human name of this coordinator / network (CAP sender, feed author)
    # A DNS-style name for record ids (PFIF person_record_id, Atom ids); by
    # default the coordinator name made lower-case with other characters as "-".
    domain: str | None = None
    # Excel reads a CSV without a byte order mark in the legacy code page and
    # garbles Armenian and Cyrillic; the BOM lands in row 1, not the HXL row.
    csv_bom: bool = True
    # How long TAK keeps a marker after this export before greying it out.
    cot_stale_s: float = 24 * 3600.0
    cap_restriction: str = DEFAULT_CAP_RESTRICTION
    # "https://example.org/cap/{identifier}.xml": a link to each alert, which
    # aggregators that fetch alerts one by one need. None: alerts are inline only.
    cap_alert_url: str | None = None
    # Statuses that become PFIF notes; narrow it (e.g. to safe, missing-person)
    # for a PFIF repository that should not hear of emergencies.
    pfif_statuses: frozenset[str] = PFIF_STATUSES

    def __post_init__(self) -> None:
        if not math.isfinite(self.now):
            raise ValueError(f"now must be a finite Unix time, not {self.now}")
        if not self.coordinator.strip():
            raise ValueError("coordinator must name this coordinator")
        if not (math.isfinite(self.cot_stale_s) and self.cot_stale_s > 0):
            raise ValueError(f"cot_stale_s must be positive, not {self.cot_stale_s}")

    @property
    def record_domain(self) -> str:
        raw = self.domain if self.domain else self.coordinator
        slug = re.sub(r"[^a-z0-9.-]+", "-", raw.strip().lower()).strip("-.")
        return slug or "signalfire"


@dataclass(frozen=True)
class ExportFormat:
    name: str
    media_type: str
    extension: str  # for Content-Disposition: signalfire.<extension>
    render: Callable[[Sequence[FeedReport], ExportContext], bytes]


# --------------------------------------------------------------------------
# Shared helpers

# XML 1.0 section 2.2 Char, minus CR (a parser turns it into LF anyway, so
# writing it would not round-trip); surrogates can't be encoded at all.
_NOT_XML_CHAR = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV injection list


def clean_text(text: str) -> str:
    """``text`` as it reads back from an XML or CSV export.

    CR LF and lone CR become LF (XML parsers do that to text anyway); every
    character XML 1.0 forbids (C0 controls but tab and LF, U+FFFE, U+FFFF,
    surrogates) becomes U+FFFD, so a reader can see that something was there.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_XML_CHAR.sub("\ufffd", text)


def guard_formula(value: str) -> str:
    """A CSV cell that no spreadsheet will run: OWASP's leading single quote."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _json_text(text: str) -> str:
    # JSON escapes controls losslessly; only a lone surrogate can't be UTF-8.
    return _SURROGATE.sub("\ufffd", text)


def _point(r: FeedReport) -> tuple[float, float] | None:
    """(lat, lon) when the report has a usable WGS 84 position, else None."""
    if r.lat is None or r.lon is None:
        return None
    if not (math.isfinite(r.lat) and math.isfinite(r.lon)):
        return None
    if not (-90.0 <= r.lat <= 90.0 and -180.0 <= r.lon <= 180.0):
        return None
    return r.lat, r.lon


def _has_position(r: FeedReport) -> bool:
    return _point(r) is not None


def _deg(x: float) -> str:
    """Degrees with at most 7 decimals (about 1 cm), no trailing zeros."""
    text = f"{x:.7f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _num(x: float) -> str:
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _uncertainty_m(r: FeedReport) -> float | None:
    """How far the shown position may be from the true one, in metres."""
    value = r.precision_m if r.coarse else r.accuracy_m
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _position_words(r: FeedReport) -> str:
    """One sentence on how far to trust the position: the coarse mark people read."""
    if not _has_position(r):
        return "No position reported."
    err = _uncertainty_m(r)
    if r.coarse:
        within = f"within about {_num(err)} m" if err is not None else "precision unknown"
        return f"APPROXIMATE position: centre of a grid cell, the sender is {within}."
    if err is None:
        return "Position as sent; accuracy unknown."
    return f"Position as sent, accurate to {_num(err)} m."


def _people_words(r: FeedReport) -> str:
    noun = "person" if r.people == 1 else "people"
    if r.status == "missing-person":
        return f"{r.people} {noun} missing"
    return f"{r.people} {noun}"


def _chronological(reports: Iterable[FeedReport]) -> list[FeedReport]:
    return sorted(reports, key=lambda r: (r.created_at, r.seq, r.received_at, r.id))


def _gateways(r: FeedReport) -> list[str]:
    return sorted({g.gateway_name or g.gateway_key_id for g in r.receipts})


def _xml_bytes(root: ET.Element, declaration: bool = True) -> bytes:
    if declaration:  # a document, for people to read too; CoT events stay one per line
        ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if declaration else ""
    return (head + body + "\n").encode("utf-8")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: clean_text(v) for k, v in attrib.items()})
    if text is not None:
        el.text = clean_text(text)
    return el


def _summary(r: FeedReport, position_note: str = "") -> str:
    """The words every format shows: status, people, needs, position, message."""
    parts = [f"{_status_map(r.status).event}: {_people_words(r)}."]
    if r.needs:
        parts.append("Needs: " + ", ".join(r.needs) + ".")
    parts.append(_position_words(r))
    if position_note and _has_position(r):
        parts.append(position_note)
    if r.flags:
        parts.append("Flags: " + ", ".join(r.flags) + ".")
    if r.text:
        parts.append("Message: " + r.text)
    return " ".join(parts)


# --------------------------------------------------------------------------
# GeoJSON (RFC 7946)


def render_geojson(reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """A FeatureCollection, one Feature per report, in the order given.

    Coordinates are [lon, lat] in WGS 84 with at most 7 decimals and no
    ``crs`` member (RFC 7946 section 4); a report without a position has
    ``"geometry": null``. ``coarse`` / ``precision_m`` say whether the point
    is a grid-cell centre.
    """
    # ctx is unused: GeoJSON has no member for the generator or the time of export.
    features = []
    for r in reports:
        geometry: dict[str, Any] | None = None
        point = _point(r)
        if point is not None:
            lat, lon = point
            geometry = {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}
        features.append(
            {
                "type": "Feature",
                "id": r.id,
                "geometry": geometry,
                "properties": {
                    "id": r.id,
                    "status": r.status,
                    "priority": r.priority,
                    "people": r.people,
                    "needs": list(r.needs),
                    "text": None if r.text is None else _json_text(r.text),
                    "sender": _json_text(r.sender),
                    "seq": r.seq,
                    "created_at": iso(r.created_at),
                    "received_at": iso(r.received_at),
                    "state": r.state,
                    "coarse": r.coarse,
                    "precision_m": r.precision_m,
                    "accuracy_m": r.accuracy_m,
                    "flags": list(r.flags),
                    "gateways": [_json_text(g) for g in _gateways(r)],
                    "kind": r.kind,
                },
            }
        )
    doc = {"type": "FeatureCollection", "features": features}
    # allow_nan=False: NaN is not JSON, and QGIS refuses the whole file for one.
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")


# --------------------------------------------------------------------------
# CSV with HXL hashtags

# (readable header, HXL hashtag); the first twelve are docs/protocol.md
# section 11, the rest are ours (HXL allows any lower-case attribute).
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Reported at (UTC)", "#date+reported"),
    ("Latitude", "#geo+lat"),
    ("Longitude", "#geo+lon"),
    ("Accuracy (m)", "#geo+accuracy"),
    ("Status", "#status"),
    ("Severity", "#severity"),
    ("Needs", "#item+need"),
    ("People", "#affected+ind"),
    ("Message", "#description"),
    ("Report id", "#meta+id"),
    ("Sender", "#meta+sender"),
    ("Sequence", "#meta+seq"),
    ("Approximate position", "#geo+coarse"),
    ("Approximate to (m)", "#geo+precision"),
    ("Received at (UTC)", "#date+received"),
    ("Priority", "#meta+priority"),
    ("Kind", "#meta+kind"),
    ("Handling", "#meta+state"),
    ("Flags", "#meta+flags"),
    ("Gateways", "#meta+gateways"),
)


def _opt_num(x: float | None) -> str:
    return "" if x is None or not math.isfinite(x) else _num(x)


def _csv_text(value: str) -> str:
    # Guard first: clean_text turns a leading CR into LF, which the guard would miss.
    return clean_text(guard_formula(value))


def render_csv(reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """Row 1 readable headers, row 2 HXL hashtags, then one row per report.

    Every text cell is guarded against formula injection (a leading ``=``,
    ``+``, ``-``, ``@``, tab or CR gets a ``'``) and cleaned like the XML
    formats; numbers are written as plain numbers. UTF-8, CRLF rows, with a
    byte order mark unless ``ctx.csv_bom`` is false.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([h for h, _ in CSV_COLUMNS])
    writer.writerow([t for _, t in CSV_COLUMNS])
    for r in reports:
        point = _point(r)
        pos = point is not None
        text = _csv_text
        row = [
            iso(r.created_at),
            _deg(point[0]) if point is not None else "",
            _deg(point[1]) if point is not None else "",
            _opt_num(r.accuracy_m) if pos else "",
            text(r.status),
            _status_map(r.status).hxl_severity,
            text("|".join(r.needs)),
            str(r.people),
            text(r.text or ""),
            r.id,
            text(r.sender),
            str(r.seq),
            ("yes" if r.coarse else "no") if pos else "",
            _opt_num(r.precision_m) if pos else "",
            iso(r.received_at),
            text(r.priority),
            text(r.kind),
            text(r.state),
            text("|".join(r.flags)),
            text("|".join(_gateways(r))),
        ]
        writer.writerow(row)
    return ("\ufeff" if ctx.csv_bom else "").encode("utf-8") + out.getvalue().encode("utf-8")


# --------------------------------------------------------------------------
# Cursor on Target (TAK)

_COT_UNKNOWN = "9999999.0"  # CoT's "unknown" for hae, ce and le
_COT_EMERGENCY = frozenset({"b-a-o-tbl"})


def _short(sender: str) -> str:
    """A callsign from a sender id: stock radios keep node-xxxxxxxx, keys 8 hex digits."""
    return sender if sender.startswith("node-") else sender[:8]


def cot_uid(r: FeedReport) -> str:
    """The CoT uid: the same report (and for PLI and alerts, the same sender) always maps
    to the same uid, so that a re-import moves or replaces a marker instead of adding one.

    ``safe`` is a position report of the sender (one marker per sender that
    moves). ``sos`` / ``trapped`` and ``cancel`` share ATAK's own emergency uid
    convention, ``<sender uid>-9-1-1``, so that a cancel clears the alert.
    Everything else is one marker per report.
    """
    cot_type = _status_map(r.status).cot_type
    if r.status == "safe":
        return f"signalfire-{r.sender}"
    if cot_type in _COT_EMERGENCY or r.status == "cancel":
        return f"signalfire-{r.sender}-9-1-1"
    return f"signalfire-{r.id}"


def _cot_event(r: FeedReport, ctx: ExportContext, point: tuple[float, float] | None) -> ET.Element:
    m = _status_map(r.status)
    start = iso(min(float(r.created_at), ctx.now))
    err = _uncertainty_m(r) if _has_position(r) else None
    exact_fix = point is not None and _has_position(r) and not r.coarse and err is not None
    event = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": clean_text(cot_uid(r)),
            "type": m.cot_type,
            "time": start,
            "start": start,
            "stale": iso(ctx.now + ctx.cot_stale_s),
            # m-g: a device fix as sent; h-e: estimated (coarsened, or of unknown quality)
            "how": "m-g" if exact_fix else "h-e",
        },
    )
    lat, lon = point if point is not None else (0.0, 0.0)
    _sub(
        event,
        "point",
        lat=_deg(lat),
        lon=_deg(lon),
        hae=_COT_UNKNOWN,
        ce=_num(err) if err is not None and point is not None else _COT_UNKNOWN,
        le=_COT_UNKNOWN,
    )
    detail = _sub(event, "detail")
    short = _short(r.sender)
    if m.cot_type in _COT_EMERGENCY or r.status == "cancel":
        # What ATAK itself sends: "<callsign>-Alert", a link to the sender's
        # position marker, and <emergency> naming the callsign.
        _sub(
            detail,
            "link",
            uid=f"signalfire-{r.sender}",
            type=_STATUS["safe"].cot_type,
            relation="p-p",
        )
        _sub(detail, "contact", callsign=f"{short}-Alert")
        if r.status == "cancel":
            _sub(detail, "emergency", short, cancel="true")
        else:
            _sub(detail, "emergency", short, type="911 Alert")
    elif r.status == "safe":
        _sub(detail, "contact", callsign=short)
    else:
        _sub(detail, "contact", callsign=f"{short} {r.status}")
    if m.cot_type == "b-r-f-h-c":
        _sub(detail, "_medevac_", title=f"{m.event} {short}", medline_remarks=r.text or "")
    if m.cot_type == "b-m-p-s-m":
        argb = "-65536" if r.status == "missing-person" else "-256"  # red / yellow
        _sub(detail, "color", argb=argb)
        _sub(detail, "usericon", iconsetpath=f"COT_MAPPING_SPOTMAP/b-m-p-s-m/{argb}")
    if r.status != "safe":
        _sub(detail, "archive")  # keep the marker across an ATAK restart
    _sub(detail, "remarks", _summary(r))
    attrs = {
        "id": r.id,
        "status": r.status,
        "people": str(r.people),
        "sender": r.sender,
        "seq": str(r.seq),
        "created": iso(r.created_at),
        "coarse": "true" if r.coarse else "false",
    }
    if r.coarse and r.precision_m is not None:
        attrs["precision_m"] = _num(r.precision_m)
    if point is not None and not _has_position(r):
        attrs["position_from"] = "earlier alert"
    _sub(detail, "__signalfire", **attrs)
    return event


def render_cot(reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """Cursor on Target 2.0 events for ATAK, WinTAK, iTAK and TAK Server.

    One ``<event>`` per report that has a position, oldest first (a TAK
    client applies events in order: a cancel must come after its alert, a
    sender's last position last). Reports without a position are skipped,
    except a ``cancel``: it clears a marker rather than drawing one, so it
    borrows the position of the sender's latest alert in this export (or
    0,0 with unknown ce) and is always sent.

    Several events are written as a TAK stream: each event on its own line,
    without an XML declaration (a declaration is only legal at the start of
    a document, and TAK clients drop a stream that repeats it). That is what
    TAK Server's CoT inputs and ATAK's network inputs read; a single event is
    also a well-formed XML document ATAK imports as a file.
    """
    lines = []
    last_alert_point: dict[str, tuple[float, float]] = {}
    for r in _chronological(reports):
        point = _point(r)
        if _status_map(r.status).cot_type in _COT_EMERGENCY and point is not None:
            last_alert_point[r.sender] = point
        if r.status == "cancel":
            point = point or last_alert_point.pop(r.sender, None)
            event = _cot_event(r, ctx, point)
        elif point is None:
            continue
        else:
            event = _cot_event(r, ctx, point)
        # A line feed in text content may be written as &#10; (XML 1.0 section
        # 2.11 and 4.1): the same text, and every event stays on one line.
        lines.append(_xml_bytes(event, declaration=False).rstrip(b"\n").replace(b"\n", b"&#10;"))
    return b"".join(line + b"\n" for line in lines)


# --------------------------------------------------------------------------
# CAP 1.2 alerts in an Atom 1.0 feed

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
PFIF_NS = "http://zesty.ca/pfif/1.4"
_CAP_FORBIDDEN = re.compile(r"[\s,<&]+")  # CAP 1.2: not in identifier or sender


def _cap_token(value: str) -> str:
    return _CAP_FORBIDDEN.sub("-", clean_text(value)).strip("-") or "signalfire"


def _cap_time(ts: float) -> str:
    # CAP 1.2 section 3.3.2: no "Z"; UTC is written -00:00.
    return iso(ts).replace("Z", "-00:00")


def cap_identifier(r: FeedReport) -> str:
    return f"signalfire-{r.id}"


def cap_references(reports: Sequence[FeedReport], ctx: ExportContext) -> dict[str, list[str]]:
    """For each cancel, the alerts it withdraws: "sender,identifier,sent" per CAP 1.2.

    A cancel withdraws every sos, trapped or medical alert of the same sender
    that came before it in this export and that no earlier cancel withdrew.
    """
    sender = _cap_token(ctx.coordinator)
    open_alerts: dict[str, list[str]] = {}
    refs: dict[str, list[str]] = {}
    for r in _chronological(reports):
        if r.status in _CANCELLABLE:
            ref = f"{sender},{cap_identifier(r)},{_cap_time(r.created_at)}"
            open_alerts.setdefault(r.sender, []).append(ref)
        elif r.status == "cancel":
            refs[r.id] = open_alerts.pop(r.sender, [])
    return refs


def _cap_alert(r: FeedReport, ctx: ExportContext, references: Sequence[str]) -> ET.Element:
    m = _status_map(r.status)
    alert = ET.Element("alert", {"xmlns": CAP_NS})
    _sub(alert, "identifier", cap_identifier(r))
    _sub(alert, "sender", _cap_token(ctx.coordinator))
    _sub(alert, "sent", _cap_time(r.created_at))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", "Cancel" if r.status == "cancel" else "Alert")
    _sub(alert, "source", f"signalfire {r.kind} from {r.sender}")
    _sub(alert, "scope", "Restricted")
    _sub(alert, "restriction", ctx.cap_restriction)
    if references:
        _sub(alert, "references", " ".join(references))
    info = _sub(alert, "info")
    _sub(info, "category", m.cap_category)
    _sub(info, "event", m.event)
    _sub(info, "urgency", m.cap_urgency)
    _sub(info, "severity", m.cap_severity)
    _sub(info, "certainty", m.cap_certainty)
    _sub(info, "senderName", ctx.coordinator)
    _sub(info, "headline", _cap_headline(r))
    _sub(info, "description", _summary(r))
    for name, value in (
        ("status", r.status),
        ("people", str(r.people)),
        ("needs", " ".join(r.needs)),
        ("sender", r.sender),
        ("seq", str(r.seq)),
        ("position", ("approximate" if r.coarse else "exact") if _has_position(r) else ""),
        ("precision_m", _opt_num(r.precision_m) if r.coarse else ""),
        ("flags", " ".join(r.flags)),
    ):
        if value:
            param = _sub(info, "parameter")
            _sub(param, "valueName", name)
            _sub(param, "value", value)
    area = _sub(info, "area")
    _sub(area, "areaDesc", _position_words(r))
    point = _point(r)
    if point is not None:
        err = _uncertainty_m(r)
        radius_km = _num(err / 1000.0) if err is not None else "0"
        _sub(area, "circle", f"{_deg(point[0])},{_deg(point[1])} {radius_km}")
    return alert


def _cap_headline(r: FeedReport) -> str:
    m = _status_map(r.status)
    head = f"{m.event}: {_people_words(r)}"
    if r.needs:
        head += " (needs " + ", ".join(r.needs) + ")"
    if r.coarse:
        head += ", approximate position"
    return head[:160]  # CAP 1.2: headline SHOULD be under 160 characters


def render_cap_alert(r: FeedReport, reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """One report as a standalone CAP 1.2 ``<alert>`` document.

    ``reports`` is the export it belongs to, for a cancel's references.
    """
    refs = cap_references(reports, ctx).get(r.id, []) if r.status == "cancel" else []
    return _xml_bytes(_cap_alert(r, ctx, refs))


def _atom_id(ctx: ExportContext, name: str) -> str:
    return "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"signalfire:{ctx.record_domain}:{name}")
    )


def render_cap(reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """An Atom 1.0 feed with one CAP 1.2 alert per report, newest first.

    The shape of OASIS "CAP Feeds" example practice: each ``<entry>`` has the
    alert's headline as title, its sent time as updated, and the whole
    ``<alert>`` inline in ``<content type="application/cap+xml">``; with
    ``ctx.cap_alert_url`` it also links to the alert
    (``rel="alternate" type="application/cap+xml"``), which aggregators that
    fetch each alert separately need. Every report is an alert, with or
    without a position; a cancel is msgType Cancel with references.
    """
    refs = cap_references(reports, ctx)
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(feed, "id", _atom_id(ctx, "cap"))
    _sub(feed, "title", f"{ctx.coordinator}: signalfire reports (CAP 1.2)")
    _sub(feed, "updated", iso(ctx.now))
    author = _sub(feed, "author")
    _sub(author, "name", ctx.coordinator)
    _sub(feed, "generator", "signalfire")
    for r in reversed(_chronological(reports)):
        entry = _sub(feed, "entry")
        _sub(entry, "id", _atom_id(ctx, cap_identifier(r)))
        _sub(entry, "title", _cap_headline(r))
        _sub(entry, "updated", iso(r.created_at))
        _sub(entry, "category", term=r.status)
        if ctx.cap_alert_url:
            href = ctx.cap_alert_url.replace("{identifier}", cap_identifier(r))
            _sub(entry, "link", rel="alternate", type="application/cap+xml", href=href)
        _sub(entry, "summary", _summary(r))
        content = _sub(entry, "content", type="application/cap+xml")
        content.append(_cap_alert(r, ctx, refs.get(r.id, [])))
    return _xml_bytes(feed)


# --------------------------------------------------------------------------
# PFIF 1.4


def pfif_person_id(ctx: ExportContext, sender: str) -> str:
    return f"{ctx.record_domain}/sender.{sender}"


def _pfif_location(r: FeedReport) -> str | None:
    point = _point(r)
    if point is None:
        return None
    where = f"{_deg(point[0])}, {_deg(point[1])}"
    if r.coarse:
        err = _uncertainty_m(r)
        within = f"within about {_num(err)} m" if err is not None else "precision unknown"
        where += f" (APPROXIMATE: grid cell centre, {within})"
    return where


def _pfif_fields(parent: ET.Element, fields: Sequence[tuple[str, str | None]]) -> None:
    # PFIF's schema fixes the order of fields; callers list them in that order.
    for name, value in fields:
        if value:
            _sub(parent, f"pfif:{name}", value)


def _pfif_note(
    parent: ET.Element, r: FeedReport, ctx: ExportContext, person_id: str, status: str
) -> None:
    note = _sub(parent, "pfif:note")
    # The position of a missing-person report is the sender's, not the missing person's.
    where = "It is where the report was sent from." if r.status == "missing-person" else ""
    text = _summary(r, where)
    _pfif_fields(
        note,
        [
            ("note_record_id", f"{ctx.record_domain}/note.{r.id}"),
            ("person_record_id", person_id),
            ("entry_date", iso(r.received_at)),
            ("author_name", f"signalfire sender {r.sender}"),
            ("source_date", iso(r.created_at)),
            ("status", status),
            ("last_known_location", _pfif_location(r)),
            ("text", text),
        ],
    )


def render_pfif(reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """A PFIF 1.4 document for people-finder repositories.

    One ``<pfif:person>`` per sender (person_record_id
    ``<domain>/sender.<sender>``; signalfire carries no names, so full_name
    says so) holding a note per report about the sender themselves
    (``is_note_author``: the missing person wrote it). A missing-person
    report is about someone else: it becomes its own person record
    (``<domain>/missing.<report id>``, named by the report's text) with a
    ``believed_missing`` note, so that the sender is never marked missing.
    A cancel is not a note (it withdraws an alert, it says nothing of
    anyone's whereabouts); nor is any status outside ``ctx.pfif_statuses``.
    """
    root = ET.Element("pfif:pfif", {"xmlns:pfif": PFIF_NS})
    senders: dict[str, list[FeedReport]] = {}
    missing: list[FeedReport] = []
    for r in _chronological(reports):
        m = _status_map(r.status)
        if m.pfif is None or r.status not in ctx.pfif_statuses:
            continue
        if r.status == "missing-person":
            missing.append(r)
        else:
            senders.setdefault(r.sender, []).append(r)
    for sender, own in senders.items():
        person_id = pfif_person_id(ctx, sender)
        person = _sub(root, "pfif:person")
        _pfif_fields(
            person,
            [
                ("person_record_id", person_id),
                ("entry_date", iso(min(r.received_at for r in own))),
                ("author_name", f"signalfire sender {sender}"),
                ("source_name", ctx.coordinator),
                ("source_date", iso(own[0].created_at)),
                ("full_name", f"Unknown (signalfire sender {sender})"),
                (
                    "description",
                    "Sender of signalfire radio reports; the radio key "
                    f"{sender} identifies them, reports carry no name.",
                ),
            ],
        )
        for r in own:
            _pfif_note(person, r, ctx, person_id, _status_map(r.status).pfif or "")
    for r in missing:
        person_id = f"{ctx.record_domain}/missing.{r.id}"
        person = _sub(root, "pfif:person")
        named = clean_text(r.text or "").strip()
        _pfif_fields(
            person,
            [
                ("person_record_id", person_id),
                ("entry_date", iso(r.received_at)),
                ("author_name", f"signalfire sender {r.sender}"),
                ("source_name", ctx.coordinator),
                ("source_date", iso(r.created_at)),
                ("full_name", named.splitlines()[0][:200] if named else "Unnamed (see note)"),
                ("description", f"Reported missing: {_people_words(r)}. {named}".strip()),
            ],
        )
        _pfif_note(person, r, ctx, person_id, _status_map(r.status).pfif or "")
    return _xml_bytes(root)


# --------------------------------------------------------------------------
# Registry

FORMATS: Mapping[str, ExportFormat] = MappingProxyType(
    {
        f.name: f
        for f in (
            ExportFormat("geojson", "application/geo+json", "geojson", render_geojson),
            ExportFormat("csv", "text/csv; charset=utf-8", "csv", render_csv),
            ExportFormat("cot", "application/xml", "cot", render_cot),
            ExportFormat("cap", "application/atom+xml", "atom", render_cap),
            ExportFormat("pfif", "application/xml", "xml", render_pfif),
        )
    }
)


def render(name: str, reports: Sequence[FeedReport], ctx: ExportContext) -> bytes:
    """The export ``name`` of ``reports``; ValueError (not KeyError) for an unknown name."""
    fmt = FORMATS.get(name)
    if fmt is None:
        known = ", ".join(FORMATS)
        raise ValueError(f"unknown export format {name!r}; use one of: {known}")
    return fmt.render(reports, ctx)
