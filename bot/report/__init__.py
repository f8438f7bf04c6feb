"""The team report: build (the store's records as plain data), text (terminal tables), html_page (a page with charts)."""
