"""The JSON API over a real server: roles, sessions, CSRF, feed, marks, exports, SSE."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import httpx
import pytest

from signalfire.coordinator.feed import FeedSettings

from .live import PASSWORDS, LiveCoordinator, start_live

TOWN = [
    {"status": "sos", "lat": 40.1812, "lon": 44.5136, "people": 3, "text": "roof collapsed"},
    {"status": "medical", "lat": 40.1790, "lon": 44.5201, "needs": ["medicine"]},
    {"status": "safe", "lat": 40.1755, "lon": 44.5080, "sender": "lilit"},
    {"status": "need-supplies", "needs": ["water", "food"], "people": 6},  # no position
]

# Paths anyone may call; every other operation in the schema needs credentials.
PUBLIC = {("get", "/api/v1/health"), ("post", "/api/v1/session")}


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: {"{fmt}": "geojson"}.get(m.group(0), "0" * 16), path)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_non_public_operation_answers_401_without_credentials(
    live_coordinator: LiveCoordinator,
) -> None:
    anon = live_coordinator.client()
    schema = anon.get("/api/v1/openapi.json").json()
    ops = _operations(schema)
    assert len(ops) >= 15  # the walk covers the API, not an empty schema
    for method, path, _op in ops:
        if (method, path) in PUBLIC:
            continue
        r = anon.request(method.upper(), _fill(path), json={})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "unauthenticated"
        # A forged or stale token is no better than none.
        r = anon.request(
            method.upper(), _fill(path), json={}, headers={"Authorization": "Bearer sft_forged"}
        )
        assert r.status_code == 401, (method, path)


def test_roles_are_enforced_on_every_operation(live_coordinator: LiveCoordinator) -> None:
    """Admin operations refuse viewers and responders; acting on reports refuses viewers."""
    live = live_coordinator
    schema = live.client().get("/api/v1/openapi.json").json()
    viewer, responder = live.client("viewer"), live.client("responder")
    checked = 0
    for method, path, op in _operations(schema):
        tags = op.get("tags", [])
        if "admin" in tags:
            refused = (viewer, responder)
        elif path.endswith("/marks"):
            refused = (viewer,)
        else:
            continue
        for client in refused:
            r = client.request(method.upper(), _fill(path), json={})
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.json()["error"] == "forbidden"
            checked += 1
    assert checked >= 8


def test_viewer_sees_coarse_positions_responder_exact_and_is_audited(
    live_any: LiveCoordinator,
) -> None:
    live = live_any
    ids = live.add_reports(TOWN)
    viewer, responder, admin = live.client("viewer"), live.client("responder"), live.client("admin")

    coarse = {r["id"]: r for r in viewer.get("/api/v1/reports").json()["reports"]}
    exact = {r["id"]: r for r in responder.get("/api/v1/reports").json()["reports"]}
    assert set(coarse) == set(exact) == set(ids)
    sos = ids[0]
    assert exact[sos]["coarse"] is False
    assert abs(exact[sos]["lat"] - 40.1812) < 1e-4 and abs(exact[sos]["lon"] - 44.5136) < 1e-4
    assert coarse[sos]["coarse"] is True and coarse[sos]["accuracy_m"] is None
    assert coarse[sos]["precision_m"] >= 700  # half the diagonal of a 1 km cell
    assert (coarse[sos]["lat"], coarse[sos]["lon"]) != (exact[sos]["lat"], exact[sos]["lon"])
    assert coarse[ids[3]]["lat"] is None  # no position stays no position

    entries = admin.get("/api/v1/audit", params={"limit": 1000}).json()["entries"]
    views = [e for e in entries if e["action"] == "view.exact"]
    assert [e["actor"] for e in views] == [f"user:{PASSWORDS['responder'][0]}"]
    assert set(views[0]["detail"]["ids"]) == set(ids[:3])  # the three with a position


def test_filters_counts_senders_and_bad_filters(live_any: LiveCoordinator) -> None:
    live = live_any
    ids = live.add_reports(TOWN)
    later = live.add_reports([{"status": "cancel", "sender": "lilit", "lat": 40.1, "lon": 44.5}])
    c = live.client("responder")

    only = c.get("/api/v1/reports", params={"status": "sos,medical"}).json()["reports"]
    assert {r["id"] for r in only} == {ids[0], ids[1]}
    box = c.get("/api/v1/reports", params={"bbox": "44.51,40.178,44.53,40.19"}).json()
    assert {r["id"] for r in box["reports"]} == {ids[0], ids[1]}

    counts = c.get("/api/v1/counts").json()
    assert counts["total"] == 5
    assert counts["by_status"]["sos"] == 1 and counts["by_status"]["cancel"] == 1
    assert counts["by_need"]["water"] == 1 and counts["by_need"]["medicine"] == 1

    senders = {s["sender"]: s for s in c.get("/api/v1/senders").json()["senders"]}
    assert len(senders) == 4  # lilit sent twice
    lilit = [s for s in senders.values() if s["count"] == 2]
    assert len(lilit) == 1 and lilit[0]["latest"]["id"] == later[0]
    history = c.get(f"/api/v1/senders/{lilit[0]['sender']}/reports").json()["reports"]
    assert [r["status"] for r in history] == ["cancel", "safe"]

    for params in ({"status": "burning"}, {"bbox": "1,2,3"}, {"state": "lost"}, {"limit": 0}):
        r = c.get("/api/v1/reports", params=params)
        assert r.status_code in (400, 422), params
        assert r.json()["error"] in ("bad-filter", "invalid-request")


def test_marks_need_csrf_are_recorded_and_audited(live_any: LiveCoordinator) -> None:
    live = live_any
    (rid,) = live.add_reports(TOWN[:1])
    responder = live.client("responder")

    no_csrf = httpx.Client(base_url=live.url, cookies=responder.cookies)
    r = no_csrf.post(f"/api/v1/reports/{rid}/marks", json={"state": "seen"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"

    r = responder.post(
        f"/api/v1/reports/{rid}/marks", json={"state": "assigned", "note": "team 2 going"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["report"]["state"] == "assigned"
    r = responder.post(f"/api/v1/reports/{rid}/marks", json={"state": "resolved", "note": "ok"})
    detail = responder.get(f"/api/v1/reports/{rid}").json()
    assert detail["state"] == "resolved"
    assert [m["state"] for m in detail["marks"]] == ["assigned", "resolved"]
    assert detail["receipts"][0]["uplink"] == "https"

    bad = responder.post(f"/api/v1/reports/{rid}/marks", json={"state": "deleted"})
    assert bad.status_code == 422
    missing = responder.post(f"/api/v1/reports/{'0' * 32}/marks", json={"state": "seen"})
    assert missing.status_code == 404

    filtered = responder.get("/api/v1/reports", params={"state": "resolved"}).json()["reports"]
    assert [x["id"] for x in filtered] == [rid]
    assert responder.get("/api/v1/reports", params={"state": "new"}).json()["reports"] == []

    entries = live.client("admin").get("/api/v1/audit").json()["entries"]
    marks = [e for e in entries if e["action"] == "report.mark"]
    assert [(e["detail"]["state"], e["detail"]["note"]) for e in marks] == [
        ("assigned", "team 2 going"),
        ("resolved", "ok"),
    ]


def test_login_failures_are_throttled_and_say_nothing_about_users(
    live_coordinator: LiveCoordinator,
) -> None:
    anon = live_coordinator.client()
    name = PASSWORDS["responder"][0]
    wrong = anon.post("/api/v1/session", json={"username": name, "password": "not-it-at-all"})
    unknown = anon.post("/api/v1/session", json={"username": "nobody", "password": "x" * 12})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    codes = [
        anon.post("/api/v1/session", json={"username": name, "password": "guess"}).status_code
        for _ in range(6)
    ]
    assert codes[-1] == 429
    throttled = anon.post("/api/v1/session", json={"username": name, "password": "guess"})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    # Even the right password waits: the throttle is not a password oracle.
    right = anon.post(
        "/api/v1/session", json={"username": name, "password": PASSWORDS["responder"][1]}
    )
    assert right.status_code == 429
    entries = live_coordinator.client("admin").get("/api/v1/audit").json()["entries"]
    fails = [e for e in entries if e["action"] == "login.fail"]
    assert len(fails) >= 3 and all("password" not in e["detail"] for e in fails)


def test_api_tokens_logout_and_disabling_end_access(live_coordinator: LiveCoordinator) -> None:
    live = live_coordinator
    responder = live.client("responder")
    token = responder.post("/api/v1/tokens", json={"label": "qgis", "days": 1}).json()["token"]
    assert token.startswith("sft_")
    bearer = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"})
    assert bearer.get("/api/v1/reports").status_code == 200
    # A bearer token needs no CSRF header (a browser never sends it by itself).
    (rid,) = live.add_reports(TOWN[:1])
    assert bearer.post(f"/api/v1/reports/{rid}/marks", json={"state": "seen"}).status_code == 200

    assert responder.delete("/api/v1/session").status_code == 200
    assert responder.get("/api/v1/reports").status_code == 401

    admin = live.client("admin")
    name = PASSWORDS["responder"][0]
    r = admin.patch(f"/api/v1/users/{name}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["user"]["disabled"] is True
    assert bearer.get("/api/v1/reports").status_code == 401  # tokens end with the user
    again = live.client().post(
        "/api/v1/session", json={"username": name, "password": PASSWORDS["responder"][1]}
    )
    assert again.status_code == 401


def test_admin_manages_users_and_gateways(live_coordinator: LiveCoordinator) -> None:
    admin = live_coordinator.client("admin")
    r = admin.post(
        "/api/v1/users", json={"username": "tigran", "password": "short", "role": "viewer"}
    )
    assert r.status_code == 422
    r = admin.post(
        "/api/v1/users",
        json={"username": "tigran", "password": "long-enough-pass", "role": "viewer"},
    )
    assert r.status_code == 201 and r.json()["user"]["role"] == "viewer"
    dup = admin.post(
        "/api/v1/users",
        json={"username": "tigran", "password": "long-enough-pass", "role": "viewer"},
    )
    assert dup.status_code == 409 and "exists" in dup.json()["message"]
    last_admin = admin.patch(f"/api/v1/users/{PASSWORDS['admin'][0]}", json={"role": "viewer"})
    assert last_admin.status_code == 400 and "last active admin" in last_admin.json()["message"]

    key = "ab" * 32
    r = admin.post("/api/v1/gateways", json={"name": "school-roof", "public_key": key})
    assert r.status_code == 201 and r.json()["new"] is True
    key_id = r.json()["gateway"]["key_id"]
    names = {g["name"]: g for g in admin.get("/api/v1/gateways").json()["gateways"]}
    assert names["school-roof"]["active"] is True
    assert admin.post(f"/api/v1/gateways/{key_id}/revoke").status_code == 200
    names = {g["name"]: g for g in admin.get("/api/v1/gateways").json()["gateways"]}
    assert names["school-roof"]["active"] is False
    assert admin.post(f"/api/v1/gateways/{'f' * 16}/revoke").status_code == 404


def test_exports_download_and_are_audited_coarse_for_viewers(
    live_coordinator: LiveCoordinator,
) -> None:
    live = live_coordinator
    ids = live.add_reports(TOWN)
    responder, viewer = live.client("responder"), live.client("viewer")
    r = responder.get("/api/v1/exports/geojson", params={"status": "sos"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert "attachment" in r.headers["content-disposition"]
    features = r.json()["features"]
    assert [f["properties"]["id"] for f in features] == [ids[0]]
    lon, lat = features[0]["geometry"]["coordinates"]
    assert abs(lat - 40.1812) < 1e-4 and abs(lon - 44.5136) < 1e-4

    v = viewer.get("/api/v1/exports/geojson", params={"status": "sos"}).json()
    assert v["features"][0]["properties"]["coarse"] is True
    assert v["features"][0]["geometry"]["coordinates"] != [lon, lat]
    for fmt in ("csv", "cot", "cap", "pfif"):
        assert responder.get(f"/api/v1/exports/{fmt}").status_code == 200, fmt
    assert responder.get("/api/v1/exports/kml").status_code == 422

    entries = live.client("admin").get("/api/v1/audit", params={"limit": 1000}).json()["entries"]
    exported = [(e["actor"], e["detail"]["format"], e["detail"]["exact"]) for e in entries
                if e["action"] == "export"]  # fmt: skip
    assert (f"user:{PASSWORDS['viewer'][0]}", "geojson", False) in exported
    assert (f"user:{PASSWORDS['responder'][0]}", "geojson", True) in exported
    assert len(exported) == 6


def _read_events(response: httpx.Response, want: int, timeout_s: float) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    kind = None
    deadline = time.monotonic() + timeout_s
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            events.append((kind, json.loads(line[6:])))
            kind = None
            if len(events) >= want:
                break
        if time.monotonic() > deadline:
            break
    return events


def test_server_sent_events_bring_new_reports_and_marks(live_coordinator: LiveCoordinator) -> None:
    live = live_coordinator
    viewer, responder = live.client("viewer"), live.client("responder")
    with viewer.stream("GET", "/api/v1/events", timeout=20) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        (rid,) = live.add_reports(TOWN[:1])
        responder.post(f"/api/v1/reports/{rid}/marks", json={"state": "seen"})
        events = _read_events(stream, 2, 15)
    kinds = {k: d for k, d in events}
    assert kinds["report"]["id"] == rid and kinds["report"]["coarse"] is True
    assert kinds["mark"] == {
        "report_id": rid,
        "mark": {
            "state": "seen",
            "note": "",
            "by": PASSWORDS["responder"][0],
            "at": kinds["mark"]["mark"]["at"],
        },
    }


def test_page_and_assets_are_public_with_a_strict_policy(tmp_path: Any) -> None:
    live = start_live(
        tmp_path,
        feed_settings=FeedSettings(tile_url="https://{s}.tiles.example.org/{z}/{x}/{y}.png"),
    )
    try:
        anon = live.client()
        page = anon.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "https://*.tiles.example.org" in csp
        assert anon.get("/static/app.js").status_code == 200
        assert anon.get("/static/../accounts.py").status_code == 404
        assert anon.get("/api/v1/health").json() == {"ok": True}
        assert anon.get("/api/v1/config").status_code == 401
        # Every answer carries the same protections, errors and API answers included.
        answers = [anon.get(p) for p in ("/api/v1/health", "/api/v1/config", "/nowhere")]
        answers += [page, anon.post("/api/v1/session", content=b"{")]
        for answer in answers:
            assert answer.headers["x-content-type-options"] == "nosniff", answer.url
            assert answer.headers["x-frame-options"] == "DENY", answer.url
            assert answer.headers["referrer-policy"] == "no-referrer", answer.url
        assert anon.get("/api/v1/config").headers["cache-control"] == "no-store"
        assert "content-security-policy" in anon.get("/nowhere").headers
    finally:
        live.stop()


def test_no_secret_reaches_the_log(
    live_coordinator: LiveCoordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    live = live_coordinator
    c = live.client("responder")
    cookie = c.cookies["sf_session"]
    token = c.post("/api/v1/tokens", json={"label": "t"}).json()["token"]
    live.client().post("/api/v1/session", json={"username": "ruben", "password": "wrong-secret-x"})
    live.add_reports(TOWN[:2])
    # The server's loggers; the test's own HTTP client (httpcore) logs response
    # headers, Set-Cookie included, at DEBUG: that is the client, not the service.
    text = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("signalfire", "uvicorn"))
    )
    assert "login" in text or "batch ingested" in text  # the service did log something
    for secret in (cookie, token, PASSWORDS["responder"][1], "wrong-secret-x"):
        assert secret not in text


def test_admin_revokes_a_sender_and_its_reports_are_flagged(live_any: LiveCoordinator) -> None:
    live = live_any
    (rid,) = live.add_reports([{"status": "sos", "sender": "seized", "lat": 40.18, "lon": 44.5}])
    admin, responder = live.client("admin"), live.client("responder")
    who = responder.get(f"/api/v1/reports/{rid}").json()["sender"]
    refused = responder.post(f"/api/v1/senders/{who}/revoke", json={"reason": "seized"})
    assert refused.status_code == 403
    r = admin.post(f"/api/v1/senders/{who}/revoke", json={"reason": "phone seized", "since": 0})
    assert r.status_code == 200 and r.json()["flagged"] == 1
    assert responder.get(f"/api/v1/reports/{rid}").json()["flags"] == ["revoked-sender"]
    (new,) = live.add_reports([{"status": "safe", "sender": "seized"}])
    assert responder.get(f"/api/v1/reports/{new}").json()["flags"] == ["revoked-sender"]
    bad = admin.post("/api/v1/senders/not-a-sender/revoke", json={"reason": "x"})
    assert bad.status_code == 422
