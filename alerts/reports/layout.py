"""Names on disk: a model's report folder (:func:`slug` of its id) and the replay bundle's suffix.

Small and import-light, so that the HTTP server's report pages need neither matplotlib nor pyarrow.
"""

from __future__ import annotations

import hashlib
import re

SUFFIX = ".replay.tar.gz"


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe, collision-resistant form of a user id (model ids may be anything).

    >>> slug("churn"), slug("churn/v2")
    ('churn', 'churn_v2-2af17d9d')
    """
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:limit].strip("_") or "model"
    if safe != text:
        safe += "-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe
