"""Meshtastic radio side: device emulator and the mesh behind it (adapter to come)."""
