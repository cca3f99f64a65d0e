"""Everything printed to a plain terminal: the headless printer, Rich tables and plotext charts."""
