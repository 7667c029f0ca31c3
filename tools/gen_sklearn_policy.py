#!/usr/bin/python3
"""Generate policies/sklearn.policy from the installed scikit-learn (Debian's /usr/bin/python3).

    tools/gen_sklearn_policy.py                 write policies/sklearn.policy
    tools/gen_sklearn_policy.py --out FILE      write FILE instead
    tools/gen_sklearn_policy.py --check         regenerate to a temporary file and compare it,
                                                byte for byte, with the committed policy
    tools/gen_sklearn_policy.py --samples DIR   also keep every pickle it made in DIR (to scan)

How: fit small estimators of many kinds on tiny synthetic data, pickle each with pickle.dumps
(protocols 2, 4, 5) and joblib.dump (uncompressed), and re-read every file with a recording
pure-Python unpickler (our own pickles, so loading them is fine) that notes each global that
find_class resolves and how the stream uses it: REDUCE (called, with the shapes of its arguments),
NEWOBJ (constructed), BUILD (instance given state) or only referenced. joblib's nested
object-array pickles are recorded too. Every estimator class of sklearn.utils.all_estimators()
gets a construct line even when it is not fitted here (its pickle is NEWOBJ + BUILD of a dict).

Globals the default policy already allows are not repeated. Calls are never allowed just because
they were seen: each called global must match a reviewed rule in CALL_RULES below (with pinned
arguments), or generation fails and names it. Globals that must stay out are in REFUSED.
Deterministic: sorted output, fixed seeds, no timestamps or versions of anything but sklearn.
"""

import _compat_pickle
import os
import pickle
import re
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import policy_output  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = os.path.join(ROOT, "policies", "sklearn.policy")
DEFAULT = os.path.join(ROOT, "policies", "default.policy")

# ---------------------------------------------------------------------------------------------
# Estimators fitted here: (name, factory, data kind). Kinds: c = classification, r = regression,
# u = unsupervised on X, t = text, cat = categorical X, pos = non-negative X, l = labels only.


def estimators():
    import numpy as np
    from sklearn import (calibration, cluster, compose, covariance, cross_decomposition,
                         decomposition, discriminant_analysis, dummy, ensemble,
                         feature_extraction, feature_selection, gaussian_process, impute,
                         isotonic, kernel_approximation, kernel_ridge, linear_model, manifold,
                         mixture, multiclass, multioutput, naive_bayes, neighbors,
                         neural_network, pipeline, preprocessing, random_projection,
                         semi_supervised, svm, tree)
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401

    lm, en, pp = linear_model, ensemble, preprocessing
    small = dict(n_estimators=3, random_state=0)
    return [
        # linear models
        ("LinearRegression", lambda: lm.LinearRegression(), "r"),
        ("Ridge", lambda: lm.Ridge(), "r"),
        ("RidgeClassifier", lambda: lm.RidgeClassifier(), "c"),
        ("Lasso", lambda: lm.Lasso(alpha=0.1), "r"),
        ("ElasticNet", lambda: lm.ElasticNet(alpha=0.1), "r"),
        ("LassoCV", lambda: lm.LassoCV(cv=2, n_alphas=3), "r"),
        ("Lars", lambda: lm.Lars(), "r"),
        ("BayesianRidge", lambda: lm.BayesianRidge(), "r"),
        ("ARDRegression", lambda: lm.ARDRegression(), "r"),
        ("HuberRegressor", lambda: lm.HuberRegressor(), "r"),
        ("TheilSenRegressor", lambda: lm.TheilSenRegressor(random_state=0, max_subpopulation=50), "r"),
        ("RANSACRegressor", lambda: lm.RANSACRegressor(random_state=0), "r"),
        ("PoissonRegressor", lambda: lm.PoissonRegressor(), "pos"),
        ("TweedieRegressor", lambda: lm.TweedieRegressor(), "pos"),
        ("LogisticRegression", lambda: lm.LogisticRegression(max_iter=200), "c"),
        ("LogisticRegressionCV", lambda: lm.LogisticRegressionCV(cv=2, Cs=2), "c"),
        ("SGDClassifier", lambda: lm.SGDClassifier(random_state=0), "c"),
        ("SGDClassifier-log", lambda: lm.SGDClassifier(loss="log_loss", random_state=0), "c"),
        ("SGDClassifier-mhuber", lambda: lm.SGDClassifier(loss="modified_huber", random_state=0), "c"),
        ("SGDClassifier-sqhinge", lambda: lm.SGDClassifier(loss="squared_hinge", random_state=0), "c"),
        ("SGDRegressor", lambda: lm.SGDRegressor(random_state=0), "r"),
        ("SGDRegressor-huber", lambda: lm.SGDRegressor(loss="huber", random_state=0), "r"),
        ("SGDRegressor-eps", lambda: lm.SGDRegressor(loss="epsilon_insensitive", random_state=0), "r"),
        ("SGDRegressor-sqeps", lambda: lm.SGDRegressor(loss="squared_epsilon_insensitive", random_state=0), "r"),
        ("Perceptron", lambda: lm.Perceptron(), "c"),
        ("PassiveAggressiveClassifier", lambda: lm.PassiveAggressiveClassifier(random_state=0), "c"),
        ("QuantileRegressor", lambda: lm.QuantileRegressor(alpha=0.1, solver="highs"), "r"),
        ("OrthogonalMatchingPursuit", lambda: lm.OrthogonalMatchingPursuit(), "r"),
        # trees and ensembles
        ("DecisionTreeClassifier", lambda: tree.DecisionTreeClassifier(random_state=0), "c"),
        ("DecisionTreeRegressor", lambda: tree.DecisionTreeRegressor(random_state=0), "r"),
        ("ExtraTreeClassifier", lambda: tree.ExtraTreeClassifier(random_state=0), "c"),
        ("RandomForestClassifier", lambda: en.RandomForestClassifier(**small), "c"),
        ("RandomForestRegressor", lambda: en.RandomForestRegressor(**small), "r"),
        ("ExtraTreesClassifier", lambda: en.ExtraTreesClassifier(**small), "c"),
        ("ExtraTreesRegressor", lambda: en.ExtraTreesRegressor(**small), "r"),
        ("RandomTreesEmbedding", lambda: en.RandomTreesEmbedding(**small), "u"),
        ("GradientBoostingClassifier", lambda: en.GradientBoostingClassifier(**small), "c"),
        ("GradientBoostingClassifier-bin", lambda: en.GradientBoostingClassifier(**small), "c2"),
        ("GradientBoostingRegressor", lambda: en.GradientBoostingRegressor(**small), "r"),
        ("GradientBoostingRegressor-huber", lambda: en.GradientBoostingRegressor(loss="huber", **small), "r"),
        ("GradientBoostingRegressor-quantile", lambda: en.GradientBoostingRegressor(loss="quantile", **small), "r"),
        ("GradientBoostingRegressor-lad", lambda: en.GradientBoostingRegressor(loss="absolute_error", **small), "r"),
        ("HistGradientBoostingClassifier", lambda: en.HistGradientBoostingClassifier(max_iter=3), "c"),
        ("HistGradientBoostingClassifier-bin", lambda: en.HistGradientBoostingClassifier(max_iter=3), "c2"),
        ("HistGradientBoostingRegressor", lambda: en.HistGradientBoostingRegressor(max_iter=3), "r"),
        ("HistGradientBoostingRegressor-poisson", lambda: en.HistGradientBoostingRegressor(loss="poisson", max_iter=3), "pos"),
        ("HistGradientBoostingRegressor-abs", lambda: en.HistGradientBoostingRegressor(loss="absolute_error", max_iter=3), "r"),
        ("HistGradientBoostingRegressor-quantile", lambda: en.HistGradientBoostingRegressor(loss="quantile", quantile=0.3, max_iter=3), "r"),
        ("AdaBoostClassifier", lambda: en.AdaBoostClassifier(**small), "c"),
        ("AdaBoostRegressor", lambda: en.AdaBoostRegressor(**small), "r"),
        ("BaggingClassifier", lambda: en.BaggingClassifier(**small), "c"),
        ("IsolationForest", lambda: en.IsolationForest(**small), "u"),
        ("VotingClassifier", lambda: en.VotingClassifier([("lr", lm.LogisticRegression()), ("nb", naive_bayes.GaussianNB())]), "c"),
        ("StackingRegressor", lambda: en.StackingRegressor([("r", lm.Ridge()), ("t", tree.DecisionTreeRegressor(random_state=0))], cv=2), "r"),
        # SVMs
        ("SVC", lambda: svm.SVC(), "c"),
        ("SVC-proba", lambda: svm.SVC(probability=True, random_state=0), "c"),
        ("NuSVC", lambda: svm.NuSVC(nu=0.3), "c"),
        ("SVR", lambda: svm.SVR(), "r"),
        ("LinearSVC", lambda: svm.LinearSVC(), "c"),
        ("LinearSVR", lambda: svm.LinearSVR(), "r"),
        ("OneClassSVM", lambda: svm.OneClassSVM(), "u"),
        # neighbors
        ("KNeighborsClassifier", lambda: neighbors.KNeighborsClassifier(3), "c"),
        ("KNeighborsClassifier-ball", lambda: neighbors.KNeighborsClassifier(3, algorithm="ball_tree"), "c"),
        ("KNeighborsClassifier-manhattan", lambda: neighbors.KNeighborsClassifier(3, algorithm="kd_tree", metric="manhattan"), "c"),
        ("KNeighborsClassifier-chebyshev", lambda: neighbors.KNeighborsClassifier(3, algorithm="ball_tree", metric="chebyshev"), "c"),
        ("KNeighborsClassifier-minkowski", lambda: neighbors.KNeighborsClassifier(3, algorithm="ball_tree", p=3), "c"),
        ("KNeighborsClassifier-brute", lambda: neighbors.KNeighborsClassifier(3, algorithm="brute"), "c"),
        ("KNeighborsRegressor", lambda: neighbors.KNeighborsRegressor(3), "r"),
        ("RadiusNeighborsClassifier", lambda: neighbors.RadiusNeighborsClassifier(radius=10.0), "c"),
        ("NearestNeighbors", lambda: neighbors.NearestNeighbors(n_neighbors=3), "u"),
        ("NearestCentroid", lambda: neighbors.NearestCentroid(), "c"),
        ("KernelDensity", lambda: neighbors.KernelDensity(), "u"),
        ("LocalOutlierFactor", lambda: neighbors.LocalOutlierFactor(n_neighbors=5, novelty=True), "u"),
        ("KDTree", lambda: _TreeFit(neighbors.KDTree), "u"),
        ("BallTree", lambda: _TreeFit(neighbors.BallTree), "u"),
        # clustering and mixtures
        ("KMeans", lambda: cluster.KMeans(3, n_init=2, random_state=0), "u"),
        ("MiniBatchKMeans", lambda: cluster.MiniBatchKMeans(3, n_init=2, random_state=0, batch_size=20), "u"),
        ("BisectingKMeans", lambda: cluster.BisectingKMeans(3, random_state=0), "u"),
        ("DBSCAN", lambda: cluster.DBSCAN(), "u"),
        ("AgglomerativeClustering", lambda: cluster.AgglomerativeClustering(3), "u"),
        ("Birch", lambda: cluster.Birch(n_clusters=3), "u"),
        ("MeanShift", lambda: cluster.MeanShift(bandwidth=2.0), "u"),
        ("OPTICS", lambda: cluster.OPTICS(min_samples=5), "u"),
        ("GaussianMixture", lambda: mixture.GaussianMixture(2, random_state=0), "u"),
        ("BayesianGaussianMixture", lambda: mixture.BayesianGaussianMixture(n_components=2, random_state=0), "u"),
        # decomposition, manifold, covariance, cross decomposition
        ("PCA", lambda: decomposition.PCA(3), "u"),
        ("IncrementalPCA", lambda: decomposition.IncrementalPCA(3), "u"),
        ("KernelPCA", lambda: decomposition.KernelPCA(3, kernel="rbf"), "u"),
        ("TruncatedSVD", lambda: decomposition.TruncatedSVD(3, random_state=0), "u"),
        ("NMF", lambda: decomposition.NMF(3, max_iter=50, random_state=0), "pos"),
        ("FastICA", lambda: decomposition.FastICA(3, random_state=0, whiten="unit-variance"), "u"),
        ("FactorAnalysis", lambda: decomposition.FactorAnalysis(3), "u"),
        ("LatentDirichletAllocation", lambda: decomposition.LatentDirichletAllocation(3, max_iter=3, random_state=0), "pos"),
        ("Isomap", lambda: manifold.Isomap(n_neighbors=5, n_components=2), "u"),
        ("EmpiricalCovariance", lambda: covariance.EmpiricalCovariance(), "u"),
        ("LedoitWolf", lambda: covariance.LedoitWolf(), "u"),
        ("PLSRegression", lambda: cross_decomposition.PLSRegression(2), "r2"),
        ("CCA", lambda: cross_decomposition.CCA(2), "r2"),
        # naive Bayes, discriminant analysis, Gaussian processes, kernels
        ("GaussianNB", lambda: naive_bayes.GaussianNB(), "c"),
        ("MultinomialNB", lambda: naive_bayes.MultinomialNB(), "posc"),
        ("BernoulliNB", lambda: naive_bayes.BernoulliNB(), "c"),
        ("ComplementNB", lambda: naive_bayes.ComplementNB(), "posc"),
        ("LinearDiscriminantAnalysis", lambda: discriminant_analysis.LinearDiscriminantAnalysis(), "c"),
        ("QuadraticDiscriminantAnalysis", lambda: discriminant_analysis.QuadraticDiscriminantAnalysis(), "c"),
        ("GaussianProcessRegressor", lambda: gaussian_process.GaussianProcessRegressor(random_state=0), "r"),
        ("GaussianProcessClassifier", lambda: gaussian_process.GaussianProcessClassifier(random_state=0), "c2"),
        ("KernelRidge", lambda: kernel_ridge.KernelRidge(), "r"),
        ("RBFSampler", lambda: kernel_approximation.RBFSampler(random_state=0), "u"),
        ("Nystroem", lambda: kernel_approximation.Nystroem(n_components=10, random_state=0), "u"),
        ("GaussianRandomProjection", lambda: random_projection.GaussianRandomProjection(3, random_state=0), "u"),
        ("SparseRandomProjection", lambda: random_projection.SparseRandomProjection(3, random_state=0), "u"),
        # preprocessing, imputation, feature selection
        ("StandardScaler", lambda: pp.StandardScaler(), "u"),
        ("MinMaxScaler", lambda: pp.MinMaxScaler(), "u"),
        ("RobustScaler", lambda: pp.RobustScaler(), "u"),
        ("MaxAbsScaler", lambda: pp.MaxAbsScaler(), "u"),
        ("Normalizer", lambda: pp.Normalizer(), "u"),
        ("PolynomialFeatures", lambda: pp.PolynomialFeatures(2), "u"),
        ("SplineTransformer", lambda: pp.SplineTransformer(n_knots=3), "u"),
        ("QuantileTransformer", lambda: pp.QuantileTransformer(n_quantiles=20), "u"),
        ("PowerTransformer", lambda: pp.PowerTransformer(), "u"),
        ("KBinsDiscretizer", lambda: pp.KBinsDiscretizer(3, encode="onehot"), "u"),
        ("OneHotEncoder", lambda: pp.OneHotEncoder(handle_unknown="ignore"), "cat"),
        ("OrdinalEncoder", lambda: pp.OrdinalEncoder(), "cat"),
        ("LabelEncoder", lambda: pp.LabelEncoder(), "l"),
        ("LabelBinarizer", lambda: pp.LabelBinarizer(), "l"),
        ("SimpleImputer", lambda: impute.SimpleImputer(), "u"),
        ("KNNImputer", lambda: impute.KNNImputer(), "u"),
        ("IterativeImputer", lambda: impute.IterativeImputer(max_iter=2, random_state=0), "u"),
        ("SelectKBest", lambda: feature_selection.SelectKBest(k=3), "c"),
        ("VarianceThreshold", lambda: feature_selection.VarianceThreshold(), "u"),
        ("RFE", lambda: feature_selection.RFE(lm.LogisticRegression(), n_features_to_select=3), "c"),
        ("SelectFromModel", lambda: feature_selection.SelectFromModel(lm.Lasso(alpha=0.1)), "r"),
        # text
        ("CountVectorizer", lambda: feature_extraction.text.CountVectorizer(), "t"),
        ("TfidfVectorizer", lambda: feature_extraction.text.TfidfVectorizer(stop_words="english"), "t"),
        ("HashingVectorizer", lambda: feature_extraction.text.HashingVectorizer(n_features=64), "t"),
        ("DictVectorizer", lambda: _DictFit(feature_extraction.DictVectorizer()), "u"),
        # composition, meta-estimators
        ("Pipeline", lambda: pipeline.make_pipeline(pp.StandardScaler(), lm.LogisticRegression()), "c"),
        ("Pipeline-text", lambda: pipeline.make_pipeline(feature_extraction.text.TfidfVectorizer(), naive_bayes.MultinomialNB()), "t"),
        ("FeatureUnion", lambda: pipeline.make_union(decomposition.PCA(2), pp.StandardScaler()), "u"),
        ("ColumnTransformer", lambda: compose.make_column_transformer(
            (pp.OneHotEncoder(handle_unknown="ignore"), [0]),
            (pipeline.make_pipeline(impute.SimpleImputer(), pp.StandardScaler()), [1, 2])), "mix"),
        ("TransformedTargetRegressor", lambda: compose.TransformedTargetRegressor(lm.LinearRegression(), transformer=pp.StandardScaler()), "r"),
        ("CalibratedClassifierCV", lambda: calibration.CalibratedClassifierCV(svm.LinearSVC(), cv=2), "c"),
        ("CalibratedClassifierCV-iso", lambda: calibration.CalibratedClassifierCV(naive_bayes.GaussianNB(), cv=2, method="isotonic"), "c"),
        ("IsotonicRegression", lambda: isotonic.IsotonicRegression(), "r1"),
        ("OneVsRestClassifier", lambda: multiclass.OneVsRestClassifier(lm.LogisticRegression()), "c"),
        ("OneVsOneClassifier", lambda: multiclass.OneVsOneClassifier(svm.LinearSVC()), "c"),
        ("MultiOutputRegressor", lambda: multioutput.MultiOutputRegressor(lm.Ridge()), "r2"),
        ("LabelSpreading", lambda: semi_supervised.LabelSpreading(), "c"),
        ("SelfTrainingClassifier", lambda: semi_supervised.SelfTrainingClassifier(svm.SVC(probability=True, random_state=0)), "c"),
        # model selection
        ("GridSearchCV", lambda: _search().GridSearchCV(lm.Ridge(), {"alpha": [0.1, 1.0]}, cv=2), "r"),
        ("RandomizedSearchCV", lambda: _search().RandomizedSearchCV(
            lm.LogisticRegression(), {"C": [0.1, 1.0, 10.0]}, n_iter=2, cv=2, scoring="accuracy", random_state=0), "c"),
        ("GridSearchCV-multi", lambda: _search().GridSearchCV(
            tree.DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=2,
            scoring=["accuracy", "roc_auc_ovr", "neg_log_loss"], refit="accuracy"), "c"),
        # neural networks
        ("MLPClassifier", lambda: neural_network.MLPClassifier((5,), max_iter=20, random_state=0), "c"),
        ("MLPClassifier-sgd", lambda: neural_network.MLPClassifier((5,), solver="sgd", max_iter=20, random_state=0), "c"),
        ("MLPRegressor", lambda: neural_network.MLPRegressor((5,), max_iter=20, random_state=0), "r"),
        ("BernoulliRBM", lambda: neural_network.BernoulliRBM(2, n_iter=2, random_state=0), "pos"),
        # plain numpy random state objects, as estimators keep them in random_state params
        ("RandomState", lambda: _Value(np.random.RandomState(0)), "u"),
        ("dummy", lambda: dummy.DummyClassifier(), "c"),
    ]


def _search():
    from sklearn import model_selection
    return model_selection


class _TreeFit:
    """KDTree/BallTree are built from data rather than fitted."""

    def __init__(self, cls):
        self.cls = cls

    def fit(self, X, y=None):
        return self.cls(X, leaf_size=5)


class _DictFit:
    def __init__(self, est):
        self.est = est

    def fit(self, X, y=None):
        return self.est.fit([{"a": float(r[0]), "b": "x%d" % (i % 3)} for i, r in enumerate(X)])


class _Value:
    def __init__(self, v):
        self.v = v

    def fit(self, X, y=None):
        return self.v


def data(kind):
    import numpy as np
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 5))
    yc = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
    yr = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(scale=0.1, size=60)
    if kind == "c":
        return X, yc
    if kind == "c2":
        return X, (yc > 0).astype(int)
    if kind == "r":
        return X, yr
    if kind == "r1":
        return X[:, 0], yr
    if kind == "r2":
        return X, np.c_[yr, -yr]
    if kind == "pos":
        return np.abs(X), np.abs(yr) + 0.1
    if kind == "posc":
        return np.abs(X), yc
    if kind == "u":
        return X, None
    if kind == "l":
        return np.array(["a", "b", "c"] * 20), None
    if kind == "cat":
        return np.array([["a", "x"], ["b", "y"], ["c", "x"]] * 20, dtype=object), None
    if kind == "mix":
        Xm = np.empty((60, 3), dtype=object)
        Xm[:, 0] = ["red", "green", "blue"] * 20
        Xm[:, 1:] = X[:, :2]
        Xm[3, 1] = np.nan
        return Xm, yc
    if kind == "t":
        words = "the cat sat on a mat while dogs and birds ran far away".split()
        docs = [" ".join(words[(i + j) % len(words)] for j in range(5)) for i in range(60)]
        return docs, yc
    raise ValueError(kind)


def fit_all(only=None):
    """[(name, fitted object)] of every estimator above (only names in `only`, if given)."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make, kind in estimators():
            if only is not None and name not in only:
                continue
            X, y = data(kind)
            est = make()
            fitted = est.fit(X) if y is None else est.fit(X, y)
            out.append((name, fitted if fitted is not None else est))
    return out


# ---------------------------------------------------------------------------------------------
# Writing the pickles and recording what they use.


def write_all(fitted, outdir):
    """Writes NAME.p2.pkl, NAME.p4.pkl, NAME.p5.pkl and NAME.joblib; returns the paths."""
    import joblib
    paths = []
    for name, obj in fitted:
        for proto in (2, 4, 5):
            p = os.path.join(outdir, "%s.p%d.pkl" % (name, proto))
            with open(p, "wb") as f:
                f.write(pickle.dumps(obj, protocol=proto))
            paths.append(p)
        p = os.path.join(outdir, "%s.joblib" % name)
        joblib.dump(obj, p)
        paths.append(p)
    return paths


def gname(obj, names):
    return names.get(id(obj))


def shape(v, names):
    """A short description of an argument: a global's name, or a type."""
    g = names.get(id(v))
    if g is not None:
        return "@" + g
    if isinstance(v, tuple):
        return "(" + ", ".join(shape(x, names) for x in v) + ("," if len(v) == 1 else "") + ")"
    return type(v).__name__


class Recorder:
    """What the streams did with each global: {name: set of uses}; calls keep argument shapes."""

    def __init__(self):
        self.uses = {}      # "module.name" or "module:qual" -> set of "reference"/"construct"/"build"
        self.calls = {}     # name -> set of argument-shape strings
        self.built = set()  # type names of call results given BUILD state
        self.names = {}     # id(object) -> global name, for the objects find_class returned
        self.keep = []      # keep those objects alive so ids stay unique
        self.results = {}   # id(call result) -> name of the called global

    def unpickler(self, base):
        rec = self

        class R(base):
            def find_class(self, module, name):
                obj = super().find_class(module, name)
                if self.proto < 3 and self.fix_imports:  # the names find_class really imports
                    if (module, name) in _compat_pickle.NAME_MAPPING:
                        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
                    elif module in _compat_pickle.IMPORT_MAPPING:
                        module = _compat_pickle.IMPORT_MAPPING[module]
                key = "%s.%s" % (module, name) if "." not in name else "%s:%s" % (module, name)
                rec.names[id(obj)] = key
                rec.keep.append(obj)
                rec.uses.setdefault(key, set()).add("reference")
                return obj

            dispatch = dict(base.dispatch)

            def load_reduce(self):
                args, fn = self.stack[-1], self.stack[-2]
                g = rec.names.get(id(fn))
                if g:
                    rec.calls.setdefault(g, set()).add(shape(args, rec.names))
                base.load_reduce(self)
                rec.results[id(self.stack[-1])] = g
                rec.keep.append(self.stack[-1])

            def load_newobj(self):
                args, cls = self.stack[-1], self.stack[-2]
                g = rec.names.get(id(cls))
                if g:
                    rec.uses[g].add("construct")
                    if args:
                        rec.calls.setdefault(g + " NEWOBJ", set()).add(shape(args, rec.names))
                base.load_newobj(self)

            def load_build(self):
                g = rec.results.get(id(self.stack[-2]))
                if g:
                    rec.built.add(g)
                base.load_build(self)

            dispatch[pickle.REDUCE[0]] = load_reduce
            dispatch[pickle.NEWOBJ[0]] = load_newobj
            dispatch[pickle.BUILD[0]] = load_build

        return R

    def load_pickle(self, path):
        with open(path, "rb") as f:
            return self.unpickler(pickle._Unpickler)(f).load()

    def load_joblib(self, path):
        import joblib.numpy_pickle as jnp
        R = self.unpickler(jnp.NumpyUnpickler)
        # the wrapper's BUILD must stay joblib's (it reads the array bytes from the file)
        R.dispatch[pickle.BUILD[0]] = _chain_build(self, jnp.NumpyUnpickler.dispatch[pickle.BUILD[0]])
        old_cls, old_load = jnp.NumpyUnpickler, pickle.load
        # joblib 1.2 reads object arrays with a nested pickle.load: record that one too
        pickle.load = lambda f, **kw: self.unpickler(pickle._Unpickler)(f, **kw).load()
        jnp.NumpyUnpickler = R
        try:
            return jnp.load(path)
        finally:
            jnp.NumpyUnpickler, pickle.load = old_cls, old_load


def _chain_build(rec, joblib_build):
    def load_build(self):
        g = rec.results.get(id(self.stack[-2]))
        if g:
            rec.built.add(g)
        joblib_build(self)
    return load_build


# ---------------------------------------------------------------------------------------------
# The reviewed rules. Every call a pickle makes must match one of these; nothing else is called.


def call_rule(name, shapes):
    """(policy lines, comment) for a called global, or None when no reviewed rule covers it."""
    mod, _, fn = name.rpartition(".")
    m = re.match(r"__pyx_unpickle_(\w+)$", fn)
    if m:
        # Cython auto-pickle: __pyx_unpickle_X(type, checksum, state) checks the checksum, does
        # X.__new__(type) and assigns the cdef fields from the state tuple (or BUILD does, with
        # __setstate_cython__). Pinned to exactly X, so it never instantiates anything else.
        cls = "%s.%s" % (mod, m.group(1))
        return ["call %s (@%s, int, tuple | None) -> arg1" % (name, cls),
                "construct %s ()" % cls], None
    if fn == "newObj" and mod in ("sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree",
                                  "sklearn.metrics._dist_metrics"):
        return None, None  # handled by newobj_lines(), which pins the class set
    return None, None


def newobj_lines():
    """newObj(cls) = cls.__new__(cls) in the binary-tree and distance-metric modules, pinned to
    the classes of that module that carry only numbers and arrays (PyFuncDistance, which holds
    a Python callable it calls later, is left out)."""
    from sklearn.metrics import _dist_metrics as dm
    from sklearn.neighbors import _ball_tree, _kd_tree
    lines = []
    lines.append("# KDTree.__reduce__ = (newObj, (KDTree,), 13-tuple state): newObj(cls) is cls.__new__(cls),")
    lines.append("# pinned to the tree class itself; BUILD runs the Cython __setstate__ (arrays and ints,")
    lines.append("# plus the distance metric object below).")
    for mod, cls in ((_kd_tree, "KDTree"), (_ball_tree, "BallTree")):
        lines.append("call %s.newObj (@%s.%s) -> arg1" % (mod.__name__, mod.__name__, cls))
        lines.append("construct %s.%s ()" % (mod.__name__, cls))
    metrics = sorted(n for n, v in vars(dm).items()
                     if isinstance(v, type) and (issubclass(v, dm.DistanceMetric) or
                                                 issubclass(v, getattr(dm, "DistanceMetric32", dm.DistanceMetric)))
                     and "PyFunc" not in n and n not in ("DistanceMetric", "DistanceMetric32"))
    lines.append("# DistanceMetric.__reduce__ = (newObj, (cls,), (p, vec, mat)): same helper, pinned to the")
    lines.append("# concrete metric classes. PyFuncDistance is left out: its state holds a callable.")
    pat = " | ".join("@%s.%s" % (dm.__name__, n) for n in metrics)
    lines.append("call %s.newObj (%s) -> arg1" % (dm.__name__, pat))
    for n in metrics:
        lines.append("construct %s.%s ()" % (dm.__name__, n))
    return lines


RANDOM_LINES = """\
# numpy RandomState (estimators keep one in random_state, _rng, _random_state):
# __randomstate_ctor(name, ctor) = RandomState(ctor(name)), then BUILD gives the generator state
# (RandomState.__setstate__). ctor is pinned to __bit_generator_ctor, which looks the name up in
# numpy's fixed table of bit generators (numpy 1.x); the name is pinned to that table's keys.
# The policy syntax has no "-> class" result, so the call is marked "-> self" and the helper is
# also construct-allowed with the same pinned arguments: that is what lets BUILD reach the
# RandomState. Constructing the helper itself (NEWOBJ of a function) fails in Python; INST/OBJ
# would call it with the same pinned arguments.
call numpy.random._pickle.__randomstate_ctor ("MT19937" | "PCG64" | "PCG64DXSM" | "Philox" | "SFC64", @numpy.random._pickle.__bit_generator_ctor) -> self
construct numpy.random._pickle.__randomstate_ctor ("MT19937" | "PCG64" | "PCG64DXSM" | "Philox" | "SFC64", @numpy.random._pickle.__bit_generator_ctor)
# Generator and bare bit generators pickle the same way (np.random.default_rng() values).
call numpy.random._pickle.__generator_ctor ("MT19937" | "PCG64" | "PCG64DXSM" | "Philox" | "SFC64", @numpy.random._pickle.__bit_generator_ctor) -> self
construct numpy.random._pickle.__generator_ctor ("MT19937" | "PCG64" | "PCG64DXSM" | "Philox" | "SFC64", @numpy.random._pickle.__bit_generator_ctor)
call numpy.random._pickle.__bit_generator_ctor ("MT19937" | "PCG64" | "PCG64DXSM" | "Philox" | "SFC64") -> self
construct numpy.random._pickle.__bit_generator_ctor ("MT19937" | "PCG64" | "PCG64DXSM" | "Philox" | "SFC64")
"""

MASKED_LINES = """\
# GridSearchCV.cv_results_ holds a masked array per parameter: MaskedArray.__reduce__
# is (_mareconstruct, (cls, baseclass, (0,), 'b'), state). _mareconstruct makes an empty array of
# baseclass and wraps it in cls; BUILD (MaskedArray.__setstate__) then sets data, mask and
# fill value. Pinned to the exact dummy form, like _reconstruct in the default policy.
call numpy.ma.core._mareconstruct (@numpy.ma.core.MaskedArray, @numpy.ndarray, (0,), "b" | b"b") -> arg1
construct numpy.ma.core.MaskedArray ()
"""

MASKED_NAMES = {"numpy.ma.core._mareconstruct", "numpy.ma.core.MaskedArray"}

RANDOM_NAMES = {"numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__generator_ctor",
                "numpy.random._pickle.__bit_generator_ctor"}

# Globals a pickle must never get, whatever an estimator holds. Generation fails if one shows up.
REFUSED = {
    "functools.partial": "binds an arbitrary callable and its arguments",
    "operator.attrgetter": "reaches any attribute path",
    "operator.itemgetter": "calls __getitem__ of whatever it is given",
    "operator.methodcaller": "calls any method by name",
    "numpy.core._ufunc_reconstruct": "imports a module by name",
    "numpy.core.umath._ufunc_reconstruct": "imports a module by name",
    "numpy._core._ufunc_reconstruct": "imports a module by name (numpy >= 2)",
    "numpy._core.umath._ufunc_reconstruct": "imports a module by name (numpy >= 2)",
    "builtins.eval": "evaluates a string",
    "builtins.exec": "executes a string",
    "sklearn.metrics._dist_metrics.PyFuncDistance": "holds a Python callable that it calls",
}


def resolve(name):
    import importlib
    if ":" in name:
        mod, attr = name.split(":", 1)
    else:
        mod, _, attr = name.rpartition(".")
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def is_namedtuple(name):
    """A collections.namedtuple class: __new__ is tuple.__new__(cls, (fields...))."""
    obj = resolve(name)
    return (isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields")
            and hasattr(obj, "_make") and obj.__new__.__code__.co_filename == "<string>")


# Modules whose every class estimators may keep in their fitted state: all of their plain Python
# classes get construct lines, fitted here or not (a GradientBoostingRegressor(loss="quantile")
# needs QuantileLossFunction whether or not this script fitted one). Reviewed: their instances
# hold numbers, arrays, strings and other objects of these modules; none runs anything it holds
# at load time (PairwiseKernel may hold a metric callable, which must be an allowed global).
INTERNAL_MODULES = (
    "sklearn._loss.link",
    "sklearn._loss.loss",
    "sklearn.ensemble._gb_losses",
    "sklearn.gaussian_process.kernels",
    "sklearn.neural_network._stochastic_optimizers",
)
# scipy.sparse matrices estimators store (TfidfTransformer._idf_diag, SparseRandomProjection
# components_, ...): arrays and ints in their __dict__. dok/lil (dict/list of lists) are left out.
SCIPY_CLASSES = (
    "scipy.sparse._coo.coo_matrix",
    "scipy.sparse._csc.csc_matrix",
    "scipy.sparse._csr.csr_matrix",
)


def internal_classes():
    import importlib
    out = set(SCIPY_CLASSES)
    for m in INTERNAL_MODULES:
        mod = importlib.import_module(m)
        for n, v in vars(mod).items():
            if isinstance(v, type) and v.__module__ == m and not is_namedtuple("%s.%s" % (m, n)):
                out.add("%s.%s" % (m, n))
    for c in out:
        resolve(c)  # every name must exist in the installed version
    return out


def private_estimators():
    """Concrete private estimator classes (all_estimators() skips names with a leading '_'),
    which public ones keep fitted copies of: _SigmoidCalibration, _BinMapper, _ConstantPredictor..."""
    import inspect
    from sklearn.base import BaseEstimator
    seen, todo = set(), [BaseEstimator]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return {"%s.%s" % (c.__module__, c.__qualname__) for c in seen
            if c.__module__.startswith("sklearn.") and c.__qualname__.startswith("_")
            and not c.__qualname__.startswith("_Base") and "." not in c.__qualname__
            and not inspect.isabstract(c) and ".tests." not in c.__module__
            and "_testing" not in c.__module__ and "estimator_checks" not in c.__module__}


# Functions estimators hold as values and call on data: the univariate scores of
# SelectKBest/SelectPercentile/GenericUnivariateSelect (score_func). Referenced only; each is a
# numeric function of (X, y).
VALUE_FUNCTIONS = (
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "sklearn.feature_selection._univariate_selection.r_regression",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    # BisectingKMeans keeps its inner k-means routine (_kmeans_single) by algorithm name
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
)


def scorers():
    """(scorer classes, score functions) of every named scorer (scoring="..." in search
    estimators keeps one in scorer_): plain classes holding a metric function, its sign and
    keyword arguments, and the metric functions themselves (numeric functions of y_true, y_pred;
    referenced only). _passthrough_scorer is scorer_ when scoring is None."""
    import types
    from sklearn.metrics import _scorer, get_scorer, get_scorer_names
    classes, funcs = set(), {"%s._passthrough_scorer" % _scorer.__name__}
    for n in get_scorer_names():
        sc = get_scorer(n)
        classes.add("%s.%s" % (type(sc).__module__, type(sc).__qualname__))
        f = sc._score_func
        if isinstance(f, types.FunctionType) and "." not in f.__qualname__:
            funcs.add("%s.%s" % (f.__module__, f.__qualname__))
    return classes, funcs


def pyx_loss_helpers():
    """The Cython auto-pickle helpers of every loss class in sklearn._loss._loss (the losses of
    HistGradientBoosting), fitted here or not."""
    from sklearn._loss import _loss
    return sorted("%s.%s" % (_loss.__name__, n) for n in vars(_loss)
                  if n.startswith("__pyx_unpickle_Cy") and isinstance(getattr(_loss, n[15:], None), type))


def sgd_loss_shapes():
    """{name: set of argument shapes} of the SGD loss objects, from their own __reduce__: each
    concrete loss reduces to (cls, ()) or (cls, (one float,)), so a model with a loss not fitted
    here still loads."""
    from sklearn.linear_model import _sgd_fast as sf
    out = {}
    for n, v in sorted(vars(sf).items()):
        if not (isinstance(v, type) and issubclass(v, sf.LossFunction)):
            continue
        for args in ((), (1.0,)):
            try:
                r = v(*args).__reduce__()
            except TypeError:
                continue
            if r[0] is v:
                out["%s.%s" % (sf.__name__, n)] = {shape(r[1], {})}
            break
    return out


def class_call_rule(name, shapes):
    """REDUCE of a class (Cython extension types that __reduce__ to (cls, args)): the argument
    types seen, as patterns. Numbers and strings only, arrays as any (Cython types them)."""
    import importlib
    mod, _, cls = name.rpartition(".")
    obj = getattr(importlib.import_module(mod), cls, None)
    if not isinstance(obj, type):
        return None
    pats = set()
    for s in shapes:
        inner = s[1:-1].rstrip(",")
        parts = [p.strip() for p in inner.split(",")] if inner else []
        out = []
        for p in parts:
            if p in ("int", "float"):
                out.append("int | float" if p == "float" else "int")
            elif p == "str":
                out.append("str")
            elif p in ("ndarray",):
                out.append("any")  # typed `cnp.ndarray` in the Cython signature
            else:
                return None
        pats.add("(" + ", ".join(out) + ")")  # top level: (p) is one argument
    return " | ".join(sorted(pats))


# ---------------------------------------------------------------------------------------------


def default_names():
    names = set()
    with open(DEFAULT) as f:
        for line in f:
            m = re.match(r"\s*(reference|call|construct)\s+(\S+)", line)
            if m:
                names.add(m.group(2))
    return names


def collect(samples_dir=None):
    fitted = fit_all()
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        outdir = samples_dir or tmp
        os.makedirs(outdir, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in write_all(fitted, outdir):
                if path.endswith(".joblib"):
                    rec.load_joblib(path)
                else:
                    rec.load_pickle(path)
    return fitted, rec


def render(fitted, rec):
    import sklearn
    from sklearn.utils import all_estimators
    dflt = default_names()
    problems = []
    for g in sorted(rec.uses):
        if g in REFUSED:
            problems.append("%s: refused (%s)" % (g, REFUSED[g]))

    construct, calls, refs = {}, {}, set()
    handled_calls = set(RANDOM_NAMES) | MASKED_NAMES
    newobj_names = {"sklearn.neighbors._kd_tree.newObj", "sklearn.neighbors._ball_tree.newObj",
                    "sklearn.metrics._dist_metrics.newObj"}
    handled_calls |= newobj_names
    extra = []
    seen_calls = dict(rec.calls)
    for g in pyx_loss_helpers():
        seen_calls.setdefault(g, set())
    for g, shapes in sgd_loss_shapes().items():
        seen_calls[g] = set(seen_calls.get(g, set())) | shapes
    for g, shapes in sorted(seen_calls.items()):
        if g.endswith(" NEWOBJ"):
            if is_namedtuple(g[:-7]):
                continue  # NEWOBJ(cls, fields) = tuple.__new__: stores its arguments, nothing else
            problems.append("%s with arguments %s: no reviewed rule" % (g, sorted(shapes)))
            continue
        if g in dflt or g in handled_calls:
            continue
        lines, _ = call_rule(g, shapes)
        if lines:
            extra.append((g, lines))
            continue
        pat = class_call_rule(g, shapes)
        if pat:
            calls[g] = pat
            continue
        problems.append("%s called with %s: no reviewed rule" % (g, sorted(shapes)))

    pyx_classes = set()
    for _, lines in extra:
        for l in lines:
            if l.startswith("construct "):
                pyx_classes.add(l.split()[1])
    newobj_classes = set()
    for l in newobj_lines():
        if l.startswith("construct "):
            newobj_classes.add(l.split()[1])

    for g, uses in sorted(rec.uses.items()):
        if g in dflt or g in calls or g in handled_calls or g in pyx_classes or g in newobj_classes:
            continue
        if any(g == x for x, _ in extra):
            continue
        if g in REFUSED:
            continue
        if "construct" in uses:
            construct[g] = "NEWOBJ"
        else:
            refs.add(g)

    scorer_classes, scorer_funcs = scorers()
    for c in sorted(internal_classes() | private_estimators() | scorer_classes):
        if c not in construct and c not in dflt:
            construct[c] = "internal"
    estimator_classes = {"%s.%s" % (c.__module__, c.__name__) for _, c in all_estimators()}
    for c in estimator_classes:
        if c not in construct:
            construct[c] = "estimator"

    for f in VALUE_FUNCTIONS + tuple(sorted(scorer_funcs)):
        resolve(f)
        refs.add(f)
    # a referenced-only global that is a class seen nowhere as constructed: a value (dtype=...)
    for g in sorted(refs):
        if not g.startswith("sklearn."):
            problems.append("%s: referenced, outside sklearn, no reviewed rule" % g)

    out = []
    w = out.append
    w("# pickleproof built-in policy \"sklearn\": fitted scikit-learn estimators as pickle.dump")
    w("# (protocols 2-5) and joblib.dump write them, on top of \"default\".")
    w("#")
    w("# GENERATED by tools/gen_sklearn_policy.py from scikit-learn %s: do not edit by hand." % sklearn.__version__)
    w("# Regenerate with Debian's Python:   /usr/bin/python3 tools/gen_sklearn_policy.py")
    w("# Check it is current:               /usr/bin/python3 tools/gen_sklearn_policy.py --check")
    w("#")
    w("# How: %d fitted objects of %d classes (the list is in the generator), fitted on tiny data," % (len(fitted), len({type(o) for _, o in fitted})))
    w("# were pickled at protocols 2, 4, 5 and with joblib.dump, and every global the streams resolved")
    w("# was recorded with what the stream did with it. Classes built by NEWOBJ get construct lines;")
    w("# every class of sklearn.utils.all_estimators() (%d) gets one too, fitted here or not." % len(estimator_classes))
    w("# Calls are allowed only through reviewed rules with pinned arguments (see the generator).")
    w("# Nothing here imports by name, evaluates strings, opens files, or calls an argument.")
    w("#")
    w("# Left out on purpose (a pickle that needs them is reported unsafe):")
    for g, why in sorted(REFUSED.items()):
        w("#   %-48s %s" % (g, why))
    w("# Not covered: numpy >= 2.1 random-state pickles (bit generator objects as arguments), and")
    w("# estimator parameters that hold your own functions or classes (FunctionTransformer(func=...),")
    w("# metric=callable, score_func=...) need those globals in a policy of your own.")
    w("")
    w("policy sklearn")
    w("include default")
    w("")
    w("# ---- estimators ------------------------------------------------------------------------------")
    w("# Every estimator pickles as NEWOBJ(cls) with no arguments, then BUILD with its __dict__")
    w("# (BaseEstimator.__setstate__ only checks _sklearn_version and updates the dict).")
    for g in sorted(k for k in construct if k in estimator_classes):
        w("construct %s" % g)
    w("")
    w("# ---- internal classes estimator pickles construct ---------------------------------------------")
    w("# Plain Python classes (losses, links, tree predictors, bin mappers, optimizers, Gaussian")
    w("# process kernels, scorers, private helper estimators, scipy sparse matrices and splines,")
    w("# Bunch): NEWOBJ then BUILD of their attribute dict. None has a __setstate__ of its own")
    w("# (Bunch's does nothing); their attributes are numbers, arrays, strings and each other.")
    for g in sorted(k for k in construct if k not in estimator_classes):
        w("construct %s" % g)
    w("")
    w("# ---- Cython extension types that pickle as REDUCE(cls, args) -------------------------------")
    w("# sklearn.tree._tree.Tree(n_features, n_classes, n_outputs) allocates the tree (n_classes is")
    w("# typed cnp.ndarray in Cython: any other value is refused by Cython itself), then BUILD runs")
    w("# Tree.__setstate__ with the node and value arrays. The SGD loss objects take their one")
    w("# number (threshold, epsilon, c) or nothing. The argument lists below are the types seen.")
    for g in sorted(calls):
        builtd = g in rec.built
        w("call %s %s%s" % (g, calls[g], " -> self" if builtd else ""))
        if builtd:
            w("construct %s %s" % (g, calls[g]))
    w("")
    w("# ---- Cython auto-pickle helpers -----------------------------------------------------------------")
    w("# __pyx_unpickle_X(cls, checksum, state): checks the layout checksum, X.__new__(cls), sets the")
    w("# cdef fields from the state tuple (or BUILD does it via __setstate_cython__). The class")
    w("# argument is pinned to exactly X.")
    for g, lines in sorted(extra):
        for l in lines:
            w(l)
    w("")
    w("# ---- neighbors trees and distance metrics ------------------------------------------------------")
    for l in newobj_lines():
        w(l)
    w("")
    w("# ---- numpy random state -----------------------------------------------------------------------")
    for l in RANDOM_LINES.splitlines():
        w(l)
    w("")
    w("# ---- numpy masked arrays ---------------------------------------------------------------------")
    for l in MASKED_LINES.splitlines():
        w(l)
    w("")
    w("# ---- values --------------------------------------------------------------------------------------")
    w("# sklearn functions estimators hold as values (score_func=f_classif, scorer_ and _score_func")
    w("# of the search estimators' scorers, BisectingKMeans' inner k-means routine).")
    w("# Referenced only: a pickle can name them but never call them.")
    for g in sorted(refs):
        w("reference %s" % g)
    return "\n".join(out) + "\n", problems


def generate(samples):
    fitted, rec = collect(samples)
    text, problems = render(fitted, rec)
    return text, problems, "%d estimators fitted" % len(fitted)


def main():
    return policy_output.run("gen_sklearn_policy", __doc__, POLICY, generate)


if __name__ == "__main__":
    sys.exit(main())
