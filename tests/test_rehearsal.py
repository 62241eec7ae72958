"""``make rehearse`` inside ``make test``: the full profile's three notebooks on fake assets, offline."""
import pytest

from pa5.paths import REPO_ROOT
from pa5.rehearse import rehearse


@pytest.mark.notebook
def test_full_profile_rehearsal():
    records = rehearse(output=REPO_ROOT / "runs" / "rehearsal")  # kept (git-ignored): runs/rehearsal/rehearsal.json
    assert set(records) == {"task1", "task2", "task3"}
    for task, record in records.items():
        assert record["audit"]["ok"], f"{task}: {record['audit']}"
