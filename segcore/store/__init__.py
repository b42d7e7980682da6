"""The store: event and user files, the column cache and the catalog."""
