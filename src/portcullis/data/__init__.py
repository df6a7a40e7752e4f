"""Knowledge kept as data: benchmark catalogues, end-of-life dates, engine releases."""
