"""Modems for the costly uplinks: Iridium SBD and GSM SMS, and the container they carry.

- :mod:`.container`: the compact container (docs/protocol.md section 16) and the
  packer that chooses which reports share a message. Pure: no I/O.
- :mod:`.pdu`: SMS PDUs (3GPP TS 23.040), also pure.
- :mod:`.at`: an AT command channel over pyserial.
- :mod:`.sbd`, :mod:`.gsm`: the modem clients.
- :mod:`.sbd_emulator`, :mod:`.gsm_emulator`: modems on pseudo-terminals for tests and
  the demo, speaking the same command sets.
"""
