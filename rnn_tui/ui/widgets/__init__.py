"""One widget per file, grouped by the area of the main screen they draw."""
