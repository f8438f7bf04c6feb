"""The team report: build (the store's records as data), text (terminal tables), html_page (a page with charts)."""
