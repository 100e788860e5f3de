"""One module per fuzz target: ``ALLOWED``, ``test_one_input(data)`` and ``seeds()``.

``test_one_input`` returns normally for a clean outcome (success, or one of the
decoder's documented errors, caught inside); anything it lets escape is a finding.
"""

TARGETS = (
    "wire_packet",
    "wire_body",
    "wire_signed",
    "intake_text",
    "batch_decode",
    "batch_signed",
    "bundle_import",
    "container",
    "pdu",
    "webhooks",
    "webhooks_app",
    "api_bodies",
)
