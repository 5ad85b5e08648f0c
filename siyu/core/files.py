"""Files only their owner may read (keys, generated passwords)."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def create_private_file(path: Path, content: str) -> bool:
    """Create ``path`` with mode 0600 holding ``content``, unless it already exists.

    The content is written in full to a private temporary file and hard-linked into place, so
    two processes racing to create it agree on one file and neither reads it half-written.
    Returns whether this call created it.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True
