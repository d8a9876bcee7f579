"""Journeys: conversations the business starts from its backend, through the JSON API."""
