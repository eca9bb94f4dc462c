"""miFV (Wei, Wu and Zhou 2017) for the MIL benchmarks: Fisher-vector bags and a linear SVM.

Written here from the paper's description (no code of theirs): a diagonal
Gaussian mixture is fitted on the (standardised) training instances; a bag
becomes the Fisher vector of its instances under that mixture (the
normalised gradients of the mean log-likelihood with respect to the
component means and standard deviations), then power- and L2-normalised;
a linear SVM separates the bag vectors. The number of components and the
SVM's ``C`` are chosen by an inner stratified CV on the training bags, the
mixture refitted in every inner fold on that fold's training instances, so
inside ``cross_validate`` nothing sees a test bag. Benchmark-only: used by
``bench_mil_vote.py``.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC


def _standardise(instances):
    mean = instances.mean(0)
    scale = instances.std(0) + 1e-6
    return mean, scale


def fisher_vectors(bags, gmm):
    """Improved Fisher vectors of ``bags`` under the diagonal mixture ``gmm``, (n_bags, 2 K D)."""
    weights, means = gmm.weights_, gmm.means_
    sigmas = np.sqrt(gmm.covariances_)  # (K, D), covariance_type="diag"
    out = np.empty((len(bags), 2 * means.size))
    for i, bag in enumerate(bags):
        gamma = gmm.predict_proba(bag)  # (n, K) posteriors
        u = (bag[:, None, :] - means[None]) / sigmas[None]  # (n, K, D)
        n = len(bag)
        g_mu = np.einsum("nk,nkd->kd", gamma, u) / (n * np.sqrt(weights)[:, None])
        g_sigma = np.einsum("nk,nkd->kd", gamma, u**2 - 1.0) / (n * np.sqrt(2 * weights)[:, None])
        out[i] = np.concatenate([g_mu.ravel(), g_sigma.ravel()])
    out = np.sign(out) * np.sqrt(np.abs(out))  # power normalisation
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class FisherVectorSVC(ClassifierMixin, BaseEstimator):
    """miFV: a linear SVM on the Fisher vectors of bags, components and C by inner CV."""

    def __init__(self, n_components=(1, 2, 4), Cs=(0.1, 1.0, 10.0), cv=5, random_state=0):
        self.n_components = n_components
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state

    def _encode_fit(self, bags, k):
        instances = np.concatenate(bags)
        gmm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-3, max_iter=200,
                              random_state=self.random_state).fit(instances)
        return gmm

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        raw = [np.asarray(b, dtype=np.float64) for b in X]
        self.mean_, self.scale_ = _standardise(np.concatenate(raw))
        bags = [(b - self.mean_) / self.scale_ for b in raw]
        splits = list(StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
                      .split(np.zeros((len(y), 1)), y))
        scores = np.zeros((len(self.n_components), len(self.Cs)))
        for a, k in enumerate(self.n_components):
            for train, test in splits:
                gmm = self._encode_fit([bags[i] for i in train], k)
                f_train = fisher_vectors([bags[i] for i in train], gmm)
                f_test = fisher_vectors([bags[i] for i in test], gmm)
                for c, C in enumerate(self.Cs):
                    svc = LinearSVC(C=C, max_iter=10000).fit(f_train, y[train])
                    scores[a, c] += np.mean(svc.predict(f_test) == y[test])
        self.cv_scores_ = scores / len(splits)
        a, c = np.unravel_index(np.argmax(self.cv_scores_), self.cv_scores_.shape)
        self.n_components_, self.C_ = self.n_components[a], self.Cs[c]
        self.gmm_ = self._encode_fit(bags, self.n_components_)
        self.svc_ = LinearSVC(C=self.C_, max_iter=10000).fit(fisher_vectors(bags, self.gmm_), y)
        return self

    def decision_function(self, X):
        bags = [(np.asarray(b, dtype=np.float64) - self.mean_) / self.scale_ for b in X]
        return self.svc_.decision_function(fisher_vectors(bags, self.gmm_))

    def predict(self, X):
        bags = [(np.asarray(b, dtype=np.float64) - self.mean_) / self.scale_ for b in X]
        return self.svc_.predict(fisher_vectors(bags, self.gmm_))
