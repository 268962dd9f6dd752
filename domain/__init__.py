"""Domain logic with no I/O: validators, the billing calculator, calendars, barcodes and documents."""
