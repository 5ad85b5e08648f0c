"""OneID: identifiers observed in events resolved into people, with merge history and unmerge."""
