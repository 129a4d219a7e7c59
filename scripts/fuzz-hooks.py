"""schemathesis hooks for scripts/fuzz: an archive (`POST /content/import`,
application/x-tar) is sent as the raw bytes generated for it."""

import schemathesis

schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
