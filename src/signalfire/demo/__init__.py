"""`signalfire demo`: the whole system on one machine (system.py), and the wire walkthrough."""
