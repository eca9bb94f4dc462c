"""
Better mistakes with a hierarchy built from the data
====================================================

When the classes come without a taxonomy, one can be built from the training
data: here the ten classes of sklearn's bundled digits are grouped by Ward
linkage of their mean images on the training split (scipy, which sklearn
installs), into a two-level tree ``group -> digit``. Confusing two digits of
the same group (two digits whose mean images are close) is then a milder
mistake than confusing digits of different groups.

We train the same small MLP with cross-entropy and with hierarchy-aware
cross-entropy (:class:`~skstruct.HACEClassifier`) on a small training split,
and draw with :class:`~skstruct.display.HierarchicalDistanceDisplay` the mean
tree distance (height of the lowest common ancestor) between the true digit
and the ``k`` most probable digits, k = 1 ... 5; the legend gives the top-1
accuracy and the mistake severity (the mean distance over the mistakes), to
be read together. One stratified split, a single seed, no tuning on the test
split: the example shows the wiring and how to read the display, not a
benchmark (the comparison over seeds and data sets is
``benchmarks/bench_hierarchy.py``).

Run: ``python examples/plot_hierarchy_from_data.py [--epochs 40] [--out hierarchy.png]``
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skstruct import CrossEntropyClassifier, HACEClassifier, Hierarchy
from skstruct.display import HierarchicalDistanceDisplay

parser = argparse.ArgumentParser(description="Tree distance at k on digits.")
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--groups", type=int, default=3)
parser.add_argument("--out", default=None, help="save the figure here")
args, _ = parser.parse_known_args()

# %%
# A small training split (20 %), so that both models make mistakes to compare.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.2, stratify=y, random_state=0)

# %%
# The hierarchy: Ward linkage of the class means of the training split, cut
# into ``--groups`` groups. Only training data is used to build it.
classes = np.unique(y_train)
means = np.stack([X_train[y_train == c].mean(axis=0) for c in classes])
group_of = fcluster(linkage(means, method="ward"), t=args.groups, criterion="maxclust")
hierarchy = Hierarchy.from_paths([[f"group {g}", int(c)] for g, c in zip(group_of, classes)])
for g in np.unique(group_of):
    print(f"group {g}: digits {classes[group_of == g].tolist()}")

# %%
# Same network, two losses; both predict with argmax. One thread: a network
# this small gains nothing from more, and a busy machine makes threads wait.
network = dict(hidden_layer_sizes=(32,), max_epochs=args.epochs, batch_size=32, lr=3e-3,
               random_state=0, n_threads=1)
models = {
    "cross-entropy": CrossEntropyClassifier(hierarchy, **network),
    "HACE (d=0.5)": HACEClassifier(hierarchy, d=0.5, **network),
}
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for i, (name, clf) in enumerate(models.items()):
    pipe = make_pipeline(StandardScaler(), clf).fit(X_train, y_train)
    disp = HierarchicalDistanceDisplay.from_estimator(pipe, X_test, y_test, name=name,
                                                      plot=False)
    disp.plot(ax=ax, offset=(i - 0.5) * 0.4, width=0.4)
    print(f"{name}: top-1 {disp.accuracy:.3f}, severity {disp.mistake_severity:.3f}, "
          f"distance at k: {np.round(disp.distances, 3)}")
ax.set_title("digits: mean LCA distance of the top-k digits (lower is better)")
if args.out:
    fig.savefig(args.out, dpi=100)
