"""The 360° profile: a person's identifiers, surviving traits and latest events."""
