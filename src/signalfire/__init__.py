"""signalfire: signed, encrypted one-packet reports over Meshtastic, a gateway and a coordinator."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("signalfire")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
