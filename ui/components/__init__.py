"""Parts of the console's pages: formatting, shared widgets, and the larger pieces of the
Algorithms, Risk and Dashboard pages (each page module lays them out and refreshes them)."""
