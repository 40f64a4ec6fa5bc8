"""Output shared by the management commands."""

import json

# Rows fetched from the database at a time while the output is written.
CHUNK_SIZE = 500


def write_json_array(stdout, queryset, serializer) -> None:
    """Write one JSON array of the serialized rows, one element at a time, so
    that no list of all rows is held in memory."""
    separator = "["
    for row in queryset.iterator(chunk_size=CHUNK_SIZE):
        stdout.write(
            separator + json.dumps(serializer.to_representation(row)), ending=""
        )
        separator = ",\n"
    stdout.write("[]" if separator == "[" else "]")
