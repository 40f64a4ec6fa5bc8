"""The body of the benchmark's in-process PATCH /api/sandboxes requests."""

REPOSITORY = "https://github.com/recoup/bench"


def patch_body(entry: list[str], snapshot_id: str) -> dict:
    """Return the JSON body for one line of a key file, ``KEY [ACCOUNT_ID]``.

    It sets both fields, as bench/patch.lua does, because the baseline view
    handles only requests with both.
    """
    body = {"snapshotId": snapshot_id, "github_repo": REPOSITORY}
    if len(entry) > 1:
        body["account_id"] = entry[1]
    return body
