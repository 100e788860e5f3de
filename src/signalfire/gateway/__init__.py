"""The gateway daemon: radio intake, a durable store, and uplinks that deliver when they can."""
