"""The flows chatflow ships, written only with the public authoring API."""
