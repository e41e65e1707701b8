"""Writes reference/tensorboard_events/: an event file made by PyTorch's SummaryWriter (the writer most convkit
users know), with scalars and one histogram. `src/tensorboard.rs`'s tests read it back, so convkit's reader (and,
through the shared record format, its writer) is checked against TensorFlow's format without Python in CI.

Also, given a convkit run folder, reads RUN/tb with TensorBoard's own EventAccumulator and prints its scalars:
    target/torch-venv/bin/python reference/tensorboard_events.py [RUN]
"""
import shutil
import sys
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

if len(sys.argv) > 1:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(sys.argv[1]) / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in tags["scalars"]:
        ev = acc.Scalars(tag)
        print(f"{tag}: {len(ev)} points, first (step {ev[0].step}, {ev[0].value:.6g}), last (step {ev[-1].step}, {ev[-1].value:.6g})")
    for tag in tags["histograms"]:
        ev = acc.Histograms(tag)
        print(f"{tag}: {len(ev)} histograms, last has {ev[-1].histogram_value.num:.0f} values")
    sys.exit(0)

out = Path(__file__).parent / "tensorboard_events"
shutil.rmtree(out, ignore_errors=True)
w = SummaryWriter(str(out), filename_suffix=".torch")
for step in range(3):
    w.add_scalar("loss", 2.5 - step, step)
    w.add_scalar("lr", 0.1 * 0.5**step, step)
w.add_histogram("weights", np.array([1.0, 2.0, 2.0, 4.0]), 7, bins=np.array([1.0, 2.0, 3.0, 4.0]))
w.close()
print("wrote", *sorted(p.name for p in out.iterdir()))
