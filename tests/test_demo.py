"""The ``zoho-sa-store demo`` tour, as the README's first command runs it."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_every_step_on_embedded_sqlite_and_masks_tokens():
    result = subprocess.run(
        [sys.executable, "-m", "zoho_sa_store.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert "Every step behaved as expected." in result.stdout
    assert "refresh calls seen by Zoho: 1" in result.stdout
    # Tokens appear only masked, as their last four characters.
    assert "****" in result.stdout
    assert not re.search(r"1000\.[0-9a-f]{8,}", result.stdout)
