"""HTTPS uplink: batched POST of signed batches to a coordinator.

Authentication is the batch signature (the gateway's Ed25519 key, enrolled
at the coordinator), not mTLS: the same signed batch then also travels by
MQTT and on USB sticks, one check covers all three, and no TLS client
certificate has to be provisioned on a field gateway. TLS still protects the
transport (server certificate checked; `ca_file` for a private CA).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ... import batch
from ..records import StoredPacket
from .base import Delivery, UplinkError

log = logging.getLogger(__name__)

BATCH_PATH = "/api/v1/batches"
HEALTH_PATH = "/api/v1/health"


def batch_items(packets: Sequence[StoredPacket]) -> list[batch.BatchItem]:
    return [
        batch.BatchItem(
            packet=p.raw,
            received_at=p.received_at,
            radio_node=p.radio_node,
            snr=p.rx_snr,
            rssi=p.rx_rssi,
            hops=p.hops,
            verified=str(p.verified),
        )
        for p in packets
    ]


def batch_id_for(packets: Sequence[StoredPacket]) -> str:
    """Stable for the same packets, so a retried batch is recognisably the same one."""
    digest = hashlib.sha256(b"".join(sorted(p.copy_id for p in packets)))
    return digest.hexdigest()[:32]


class HttpsUplink:
    max_message_bytes: int | None = None
    costly = False

    def __init__(
        self,
        url: str,
        *,
        gateway: Ed25519PrivateKey,
        network_id: bytes,
        name: str = "https",
        ca_file: Path | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.gateway = gateway
        self.network_id = network_id
        verify: str | bool = str(ca_file) if ca_file else True
        self._client = httpx.Client(timeout=timeout_s, verify=verify)
        self._retry_after = 0.0

    def probe(self) -> bool:
        if time.monotonic() < self._retry_after:
            return False
        try:
            return self._client.get(self.url + HEALTH_PATH, timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def send(self, packets: Sequence[StoredPacket]) -> Delivery:
        body = batch.encode(
            batch_items(packets),
            gateway=self.gateway,
            network_id=self.network_id,
            batch_id=batch_id_for(packets),
            sent_at=int(time.time()),
        )
        try:
            response = self._client.post(
                self.url + BATCH_PATH,
                content=body,
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise UplinkError(f"coordinator unreachable: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 200:
            return self._delivery(packets, response)
        if status == 403:
            raise UplinkError(
                "the coordinator does not accept this gateway's key: ask its admin to enrol it "
                "(signalfire coordinator gateway add --key gateway.key.pub)",
                transient=False,
            )
        if status == 429:
            self._retry_after = time.monotonic() + _retry_after(response)
            raise UplinkError("the coordinator asks us to slow down (429)")
        if status == 413:
            raise UplinkError("batch too large for the coordinator (413); lower batch_size")
        raise UplinkError(
            f"coordinator answered {status}: {response.text[:200]}", transient=status >= 500
        )

    @staticmethod
    def _delivery(packets: Sequence[StoredPacket], response: httpx.Response) -> Delivery:
        try:
            answer = response.json()
            kept = {
                bytes.fromhex(x)
                for key in ("stored", "duplicates", "pending")
                for x in answer.get(key, [])
            }
            refused = {
                bytes.fromhex(r["id"]): str(r.get("error", "rejected"))
                for r in answer.get("rejected", [])
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UplinkError("coordinator's answer is not the expected JSON") from None
        delivery = Delivery()
        for p in packets:
            if p.id in kept:
                delivery.acknowledged.add(p.copy_id)
            elif p.id in refused:
                delivery.rejected[p.copy_id] = refused[p.id]
        return delivery

    def close(self) -> None:
        self._client.close()


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(600.0, max(1.0, float(response.headers.get("Retry-After", "10"))))
    except ValueError:
        return 10.0
