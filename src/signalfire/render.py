"""Reports as plain data (JSON-ready dicts) for the CLI, the API and exports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import wire


def iso_time(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_fields(report: wire.Report) -> dict[str, Any]:
    loc = report.location
    bound = loc.accuracy_m if loc else None
    out: dict[str, Any] = {
        "status": report.status.label,
        "needs": wire.need_labels(report.needs),
        "people": report.people,
        "lat": round(loc.lat, 7) if loc else None,
        "lon": round(loc.lon, 7) if loc else None,
        "accuracy_class": loc.accuracy_class if loc else None,
        "accuracy_m": None if bound is None or bound == float("inf") else bound,
        "text": report.text,
        "time": iso_time(report.time),
        "time_unix": report.time,
    }
    att = report.attestation
    out["attestation"] = (
        None
        if att is None
        else {
            "node_num": att.node_num,
            "node_id": f"!{att.node_num:08x}",
            "packet_id": att.packet_id,
            "rx_time": iso_time(att.rx_time),
            "pki_authenticated": att.pki_authenticated,
            "direct_message": att.direct_message,
            "hops": None if att.hops == 0xFF else att.hops,
            "position_age_s": att.position_age,
        }
    )
    if report.extensions:
        out["extensions"] = [{"type": t, "value": v.hex()} for t, v in report.extensions]
    return out


def opened_to_dict(opened: wire.Opened) -> dict[str, Any]:
    return {
        "id": opened.id.hex(),
        "kind": opened.kind.label,
        "priority": opened.priority.label,
        **report_fields(opened.report),
        "sender": opened.key_id.hex(),
        "sender_key": opened.identity_public.hex(),
        "seq": opened.seq,
        "verified": opened.verified,
        "size": len(opened.raw),
    }


def announcement_to_dict(ann: wire.Announcement, verified: bool) -> dict[str, Any]:
    return {
        "id": ann.id.hex(),
        "kind": "announcement",
        "priority": ann.priority.label,
        "sender": ann.key_id.hex(),
        "sender_key": ann.identity_public.hex(),
        "network": ann.network_id.hex(),
        "first_seq": ann.first_seq,
        "verified": verified,
        "size": len(ann.raw),
    }
