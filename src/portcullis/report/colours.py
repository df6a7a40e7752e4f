"""One colour per runtime, the same in every figure (colour-blind-safe Tableau tones): the overhead panels and the
noisy-neighbour heat map both draw from here. Runtimes not listed take the spare colours in order."""

RUNTIME_COLOURS = {"native": "#7f7f7f", "runc": "#4c78a8", "runsc": "#f58518", "vm": "#54a24b", "vm-tcg": "#b279a2"}
SPARE_COLOURS = ("#e45756", "#72b7b2", "#9d755d")
