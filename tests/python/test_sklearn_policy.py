# label: containers
"""The built-in `sklearn` policy against real scikit-learn pickles made at test time.

Debian's scikit-learn 1.2.1 fits 41 models here (38 estimator types) (a list of its own, not the generator's, with
other hyperparameters and data, so the policy is tested beyond the exact files it was made from);
each is written with joblib.dump (plain and compress=3) and pickle.dumps(protocol=4) and must scan `safe` under
`--policy sklearn`, and `unsafe` under `--policy default` with `global-not-allowed` naming the
sklearn class (so the sklearn policy is what makes it safe). Hostile variants (an estimator
attribute whose __reduce__ is os.system, an appended REDUCE, the pinned helpers given another
class or callable) must be `unsafe` under `--policy sklearn`. Finally
`tools/gen_sklearn_policy.py --check` regenerates the policy and compares it byte for byte with
the committed file.
"""

import json
import os
import pickle
import subprocess
import sys
import warnings

import pytest

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")
sklearn = pytest.importorskip("sklearn")

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")


def scan(path, policy):
    """(exit code, file object) of `scan --format json --policy POLICY FILE`."""
    p = subprocess.run([PICKLEPROOF, "scan", "--format", "json", "--policy", policy, str(path)],
                       capture_output=True, timeout=60 * SLOW)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode in (0, 1, 2), "exit %d (crash?)\n%s" % (p.returncode, err[-3000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    doc = json.loads(p.stdout)
    assert len(doc["files"]) == 1
    fo = doc["files"][0]
    expect = {"safe": 0, "unsafe": 1, "malformed": 1, "limit": 1, "error": 2}[fo["verdict"]]
    assert p.returncode == expect, (p.returncode, fo)
    return p.returncode, fo


def show(fo):
    return json.dumps(fo, indent=1)[:4000]


# ---------------------------------------------------------------------------------------------
# The estimators.


def _data():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(80, 4))
    yc = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3).astype(int)
    yr = X @ np.array([0.5, 1.0, -1.0, 2.0]) + rng.normal(scale=0.2, size=80)
    return X, yc, yr


def _models():
    from sklearn import (calibration, cluster, compose, decomposition, discriminant_analysis,
                         ensemble, feature_extraction, impute, linear_model, mixture,
                         model_selection, naive_bayes, neighbors, neural_network, pipeline, preprocessing, svm, tree)
    lm, en, pp = linear_model, ensemble, preprocessing
    X, yc, yr = _data()
    Xp = np.abs(X)
    labels = np.array(["spam", "ham", "eggs"])[yc]
    docs = ["%s %s token%d" % (w, w[::-1], i % 7) for i, w in
            enumerate(["alpha", "beta", "gamma", "delta"] * 20)]
    Xcat = np.array([["a", "p"], ["b", "q"], ["c", "p"], ["a", "r"]] * 20, dtype=object)
    Xmix = np.empty((80, 3), dtype=object)
    Xmix[:, 0] = ["x", "y"] * 40
    Xmix[:, 1:] = X[:, :2]
    return [
        ("LinearRegression", lm.LinearRegression(), X, yr),
        ("Ridge", lm.Ridge(alpha=2.0), X, yr),
        ("Lasso", lm.Lasso(alpha=0.05), X, yr),
        ("ElasticNet", lm.ElasticNet(alpha=0.05, l1_ratio=0.3), X, yr),
        ("LogisticRegression-str", lm.LogisticRegression(C=0.5), X, labels),
        ("SGDClassifier-perceptron", lm.SGDClassifier(loss="perceptron", random_state=2), X, yc),
        ("SGDClassifier-huber", lm.SGDClassifier(loss="huber", random_state=2), X, yc),
        ("SGDRegressor", lm.SGDRegressor(loss="epsilon_insensitive", random_state=2), X, yr),
        ("DecisionTreeClassifier", tree.DecisionTreeClassifier(max_depth=3, random_state=2), X, labels),
        ("ExtraTreeRegressor", tree.ExtraTreeRegressor(random_state=2), X, yr),
        ("RandomForestClassifier", en.RandomForestClassifier(n_estimators=4, random_state=RS()), X, yc),
        ("ExtraTreesRegressor", en.ExtraTreesRegressor(n_estimators=4, random_state=2), X, yr),
        ("GradientBoostingClassifier", en.GradientBoostingClassifier(n_estimators=4, random_state=2), X, yc),
        ("GradientBoostingRegressor", en.GradientBoostingRegressor(n_estimators=4, loss="huber", random_state=2), X, yr),
        ("HistGradientBoostingClassifier", en.HistGradientBoostingClassifier(max_iter=4), X, yc),
        ("HistGradientBoostingRegressor", en.HistGradientBoostingRegressor(loss="poisson", max_iter=4), X, np.abs(yr) + 0.1),
        ("AdaBoostRegressor", en.AdaBoostRegressor(n_estimators=3, random_state=2), X, yr),
        ("IsolationForest", en.IsolationForest(n_estimators=4, random_state=2), X, None),
        ("SVC", svm.SVC(kernel="poly", degree=2), X, yc),
        ("SVR", svm.SVR(C=2.0), X, yr),
        ("LinearSVC", svm.LinearSVC(), X, labels),
        ("KNeighborsClassifier-kd", neighbors.KNeighborsClassifier(4, algorithm="kd_tree"), X, yc),
        ("KNeighborsRegressor-ball", neighbors.KNeighborsRegressor(4, algorithm="ball_tree", metric="manhattan"), X, yr),
        ("KMeans", cluster.KMeans(2, n_init=1, random_state=2), X, None),
        ("MiniBatchKMeans", cluster.MiniBatchKMeans(2, n_init=1, batch_size=16, random_state=2), X, None),
        ("DBSCAN", cluster.DBSCAN(eps=1.0), X, None),
        ("GaussianMixture", mixture.GaussianMixture(2, random_state=2), X, None),
        ("PCA", decomposition.PCA(2, whiten=True), X, None),
        ("TruncatedSVD", decomposition.TruncatedSVD(2, random_state=2), X, None),
        ("NMF", decomposition.NMF(2, max_iter=30, random_state=2), Xp, None),
        ("GaussianNB", naive_bayes.GaussianNB(), X, labels),
        ("MultinomialNB", naive_bayes.MultinomialNB(), Xp, yc),
        ("LinearDiscriminantAnalysis", discriminant_analysis.LinearDiscriminantAnalysis(), X, yc),
        ("StandardScaler", pp.StandardScaler(), X, None),
        ("OneHotEncoder", pp.OneHotEncoder(handle_unknown="ignore"), Xcat, None),
        ("TfidfVectorizer", feature_extraction.text.TfidfVectorizer(ngram_range=(1, 2)), docs, None),
        ("Pipeline", pipeline.make_pipeline(pp.MinMaxScaler(), lm.LogisticRegression()), X, yc),
        ("ColumnTransformer", pipeline.make_pipeline(compose.make_column_transformer(
            (pp.OneHotEncoder(), [0]), (impute.SimpleImputer(), [1, 2])), lm.Ridge()), Xmix, yr),
        ("CalibratedClassifierCV", calibration.CalibratedClassifierCV(naive_bayes.GaussianNB(), cv=2), X, yc),
        ("GridSearchCV", model_selection.GridSearchCV(lm.Ridge(), {"alpha": [0.5, 5.0]}, cv=2, scoring="r2"), X, yr),
        ("MLPClassifier", neural_network.MLPClassifier((4,), max_iter=15, random_state=2), X, yc),
        ("MLPRegressor-sgd", neural_network.MLPRegressor((4,), solver="sgd", max_iter=15, random_state=2), X, yr),
    ]


def RS():
    """A RandomState as the random_state parameter: pickled with numpy's random-state helpers."""
    return np.random.RandomState(7)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sklearn")
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est, X, y in _models():
            est.fit(X) if y is None else est.fit(X, y)
            p = d / (name + ".joblib")
            joblib.dump(est, p)
            out.append((name, type(est), p))
            p = d / (name + ".z3.joblib")
            joblib.dump(est, p, compress=3)
            out.append((name, type(est), p))
            p = d / (name + ".p4.pkl")
            p.write_bytes(pickle.dumps(est, protocol=4))
            out.append((name, type(est), p))
    return out


def test_enough_estimators(model_files):
    kinds = {cls for _, cls, _ in model_files}
    assert len(kinds) >= 30, sorted(c.__name__ for c in kinds)


def test_sklearn_policy_accepts(model_files):
    for name, _, path in model_files:
        rc, fo = scan(path, "sklearn")
        assert rc == 0 and fo["verdict"] == "safe", "%s\n%s" % (path.name, show(fo))
        assert not fo["findings"], show(fo)


def test_default_policy_refuses(model_files):
    for name, cls, path in model_files:
        rc, fo = scan(path, "default")
        assert rc == 1 and fo["verdict"] == "unsafe", "%s\n%s" % (path.name, show(fo))
        refused = {f["global"] for f in fo["findings"] if f["rule"] == "global-not-allowed"}
        want = "%s.%s" % (cls.__module__, cls.__name__)
        assert want in refused, "%s: %s not refused: %s" % (path.name, want, sorted(refused))


# ---------------------------------------------------------------------------------------------
# Hostile variants: each must be unsafe under the sklearn policy.


class Boom:
    """An attribute whose pickle calls os.system when loaded."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/pickleproof-sklearn-canary",))


def _findings(fo):
    return [(f["rule"], f.get("global")) for f in fo["findings"]]


def test_hostile_attribute(tmp_path):
    from sklearn.linear_model import LogisticRegression
    X, yc, _ = _data()
    est = LogisticRegression().fit(X, yc)
    est.extra_ = Boom()
    for path in (tmp_path / "boom.joblib", tmp_path / "boom.pkl"):
        if path.suffix == ".joblib":
            joblib.dump(est, path)
        else:
            path.write_bytes(pickle.dumps(est, protocol=4))
        rc, fo = scan(path, "sklearn")
        assert rc == 1 and fo["verdict"] == "unsafe", show(fo)
        assert ("global-not-allowed", "posix.system") in _findings(fo), show(fo)
        assert ("call-not-allowed", "posix.system") in _findings(fo), show(fo)


def test_hostile_appended_reduce(tmp_path):
    """A real estimator pickle whose last BUILD is followed by os.system('...') REDUCE."""
    from sklearn.tree import DecisionTreeClassifier
    X, yc, _ = _data()
    data = pickle.dumps(DecisionTreeClassifier(random_state=0).fit(X, yc), protocol=2)
    assert data.endswith(b".")
    evil = data[:-1] + b"0cposix\nsystem\n(S'true'\ntR."
    path = tmp_path / "appended.pkl"
    path.write_bytes(evil)
    rc, fo = scan(path, "sklearn")
    assert rc == 1 and fo["verdict"] == "unsafe", show(fo)
    assert ("global-not-allowed", "posix.system") in _findings(fo), show(fo)


def _proto2(body):
    return b"\x80\x02" + body + b"."


@pytest.mark.parametrize("name,body,rule,glob", [
    # a Cython unpickle helper given another class than its own
    ("pyx-other-class",
     b"csklearn._loss._loss\n__pyx_unpickle_CyHalfSquaredError\n"
     b"csklearn._loss._loss\nCyHalfMultinomialLoss\nK\x01N\x87R", "argument-not-allowed",
     "sklearn._loss._loss.__pyx_unpickle_CyHalfSquaredError"),
    # KDTree's newObj given BallTree
    ("newobj-other-class",
     b"csklearn.neighbors._kd_tree\nnewObj\ncsklearn.neighbors._ball_tree\nBallTree\n\x85R",
     "argument-not-allowed", "sklearn.neighbors._kd_tree.newObj"),
    # the distance-metric newObj given the callable-holding PyFuncDistance
    ("newobj-pyfunc",
     b"csklearn.metrics._dist_metrics\nnewObj\ncsklearn.metrics._dist_metrics\nPyFuncDistance\n\x85R",
     "global-not-allowed", "sklearn.metrics._dist_metrics.PyFuncDistance"),
    # numpy's random-state helper given a callable other than __bit_generator_ctor
    ("randomstate-ctor",
     b"cnumpy.random._pickle\n__randomstate_ctor\nX\x07\x00\x00\x00MT19937cposix\nsystem\n\x86R",
     "argument-not-allowed", "numpy.random._pickle.__randomstate_ctor"),
    ("randomstate-ctor-builtin",
     b"cnumpy.random._pickle\n__randomstate_ctor\nX\x07\x00\x00\x00MT19937cbuiltins\nlist\n\x86R",
     "argument-not-allowed", "numpy.random._pickle.__randomstate_ctor"),
    # masked arrays only in numpy's empty dummy form (a real shape would allocate)
    ("mareconstruct-shape",
     b"cnumpy.ma.core\n_mareconstruct\n(cnumpy.ma.core\nMaskedArray\ncnumpy\nndarray\n"
     b"J\x00\xca\x9a;\x85X\x01\x00\x00\x00btR",
     "argument-not-allowed", "numpy.ma.core._mareconstruct"),
    # Tree is called with its three numbers only
    ("tree-args", b"csklearn.tree._tree\nTree\nX\x01\x00\x00\x00aK\x01K\x01\x87R",
     "argument-not-allowed", "sklearn.tree._tree.Tree"),
    # an estimator class is constructed, never called with arguments
    ("estimator-call", b"csklearn.linear_model._base\nLinearRegression\n)R",
     "call-not-allowed", "sklearn.linear_model._base.LinearRegression"),
])
def test_hostile_helpers(tmp_path, name, body, rule, glob):
    path = tmp_path / (name + ".pkl")
    path.write_bytes(_proto2(body))
    rc, fo = scan(path, "sklearn")
    assert rc == 1 and fo["verdict"] == "unsafe", show(fo)
    assert (rule, glob) in _findings(fo), show(fo)


# ---------------------------------------------------------------------------------------------


def test_generated_policy_is_current():
    """The committed policy is exactly what the generator writes from the installed sklearn."""
    gen = os.path.join(ROOT, "tools", "gen_sklearn_policy.py")
    p = subprocess.run([sys.executable, gen, "--check"], capture_output=True, timeout=300)
    assert p.returncode == 0, (p.stdout.decode()[-4000:], p.stderr.decode()[-2000:])
