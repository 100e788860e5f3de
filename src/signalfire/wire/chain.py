"""Forward-secure message keys: a binary key tree over the 32-bit sequence space.

The enrolment secret (the root) is the top of a tree of depth 32 whose
leaves are the per-message keys; a child is HMAC-SHA256(parent, 0x00 or
0x01), following the bits of the sequence number from the most significant.
The network key holder recomputes any leaf from the root in 32 HMACs.  The
sender never keeps the root: it keeps only the roots of the subtrees that
cover the sequence numbers it has not used yet (at most 32 of them), so a
seized device holds nothing that derives a key for a report already sent.
A linear hash chain would give the same property, but a forged high sequence
number could make the receiver hash billions of times; the tree bounds the
work at 32 steps whatever the number.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .errors import EncodeError, SequenceUsed

DEPTH = 32
SEQ_LIMIT = 1 << DEPTH  # sequence numbers are 0 .. SEQ_LIMIT - 1
KEY_SIZE = 32
NONCE_SIZE = 12
_MESSAGE_INFO = b"signalfire/v1 message key"
_BIT = (b"\x00", b"\x01")


def child(key: bytes, bit: int) -> bytes:
    return hmac.digest(key, _BIT[bit], "sha256")


def leaf_key(root: bytes, seq: int) -> bytes:
    """The leaf for ``seq``, computed from the root (the receiver's side)."""
    return descend(root, 0, seq)


def descend(node: bytes, depth: int, seq: int, to: int = DEPTH) -> bytes:
    """From ``node`` at ``depth`` on the path to ``seq``, the node at depth ``to``.

    A receiver that keeps the node a few levels above the leaves (Keyring does)
    opens the next reports of the same sender in a few HMACs instead of 32.
    """
    _check_seq(seq)
    if not 0 <= depth <= to <= DEPTH:
        raise ValueError(f"depths must satisfy 0 <= {depth} <= {to} <= {DEPTH}")
    key = node
    for level in range(depth, to):
        key = child(key, (seq >> (DEPTH - 1 - level)) & 1)
    return key


def message_key(leaf: bytes) -> tuple[bytes, bytes]:
    """AES-256-GCM-SIV key and nonce for one message, from its leaf."""
    material = HKDFExpand(hashes.SHA256(), KEY_SIZE + NONCE_SIZE, _MESSAGE_INFO).derive(leaf)
    return material[:KEY_SIZE], material[KEY_SIZE:]


def _check_seq(seq: int) -> None:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < SEQ_LIMIT:
        raise EncodeError(f"sequence number must be 0-{SEQ_LIMIT - 1}, got {seq!r}")


@dataclass(frozen=True, slots=True)
class Node:
    """The root key of the subtree at ``depth`` whose index at that depth is ``prefix``."""

    depth: int
    prefix: int
    key: bytes

    @property
    def start(self) -> int:
        return self.prefix << (DEPTH - self.depth)

    @property
    def end(self) -> int:
        return (self.prefix + 1) << (DEPTH - self.depth)

    def split(self) -> tuple[Node, Node]:
        d = self.depth + 1
        return (
            Node(d, self.prefix * 2, child(self.key, 0)),
            Node(d, self.prefix * 2 + 1, child(self.key, 1)),
        )


def _descend_to(node: Node, seq: int) -> tuple[Node, list[Node]]:
    """Split ``node`` down the path to the subtree starting exactly at ``seq``.

    Returns that subtree and the right-hand siblings passed on the way (in
    ascending order); left-hand siblings, which cover numbers below ``seq``,
    are dropped.
    """
    kept: list[Node] = []
    while node.start < seq:
        left, right = node.split()
        if seq >= right.start:
            node = right
        else:
            kept.append(right)
            node = left
    kept.reverse()
    return node, kept


@dataclass(frozen=True, slots=True)
class ChainState:
    """A sender's key material for one enrolment: subtrees covering [next_seq, 2**32)."""

    next_seq: int
    nodes: tuple[Node, ...]

    @classmethod
    def start(cls, root: bytes, first_seq: int = 0) -> ChainState:
        _check_seq(first_seq)
        return cls(0, (Node(0, 0, root),)).advance(first_seq)

    def advance(self, seq: int) -> ChainState:
        """Forget every key for numbers below ``seq``."""
        if seq < self.next_seq:
            raise SequenceUsed(f"sequence {seq} is below {self.next_seq}; its key is already gone")
        if seq >= SEQ_LIMIT:
            return ChainState(SEQ_LIMIT, ())
        out: list[Node] = []
        for node in self.nodes:
            if node.end <= seq:
                continue
            if node.start >= seq:
                out.append(node)
                continue
            first, rest = _descend_to(node, seq)
            out.append(first)
            out.extend(rest)
        return ChainState(seq, tuple(out))

    def take(self, seq: int) -> tuple[bytes, ChainState]:
        """The leaf key for ``seq`` and the state that can no longer derive it."""
        _check_seq(seq)
        if seq < self.next_seq:
            raise SequenceUsed(
                f"sequence {seq} was already used or skipped (next free is {self.next_seq}); "
                "a used number can never be sealed again"
            )
        state = self.advance(seq)
        if not state.nodes:
            raise SequenceUsed("this key chain is exhausted; enrol the identity again")
        node, rest = state.nodes[0], state.nodes[1:]
        # node starts at seq, so seq is always in the left half: keep each right half
        kept: list[Node] = []
        while node.depth < DEPTH:
            left, right = node.split()
            kept.append(right)
            node = left
        kept.reverse()
        return node.key, ChainState(seq + 1, (*kept, *rest))
