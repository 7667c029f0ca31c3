# label: load
"""pickleproof.load(policy="sklearn") against joblib.load / pickle.load on real estimators.

Each estimator is fitted here on small data (the model list is test_sklearn_policy's: 41 models,
38 estimator types, plus a few more below), written with joblib.dump (compress 0 and 3) and
pickle.dumps (protocols 2, 4, 5), then loaded both ways. Every output method the estimator has
(predict, predict_proba, decision_function, transform, score_samples, ...) must give exactly the
same array from both objects, and the two objects must pickle back to the same bytes (so fitted
attributes, dtypes and shared sub-objects match too, not only the outputs we call)."""
import io
import os
import pickle
import sys
import warnings

import pytest

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")
sklearn = pytest.importorskip("sklearn")

import pickleproof as pp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sklearn_policy as sp  # noqa: E402  (its model list; its tests are not collected here)

SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
# Under ASan the extension is ~4x slower: every model still goes through, with fewer formats.
FORMATS = ["joblib0", "joblib3", "p2", "p4", "p5"] if not SANITIZED else ["joblib0", "p2", "p5"]
METHODS = ["predict", "predict_proba", "predict_log_proba", "decision_function", "transform",
           "score_samples", "apply", "kneighbors"]


def _extra_models():
    from sklearn import (cluster, decomposition, feature_extraction, linear_model, neighbors,
                         preprocessing, tree)
    X, yc, yr = sp._data()
    docs = ["%s %s token%d" % (w, w[::-1], i % 7) for i, w in
            enumerate(["alpha", "beta", "gamma", "delta"] * 20)]
    Xcat = np.array([["a", "p"], ["b", "q"], ["c", "p"], ["a", "r"]] * 20, dtype=object)
    return [
        ("KDTree", neighbors.KDTree(X, leaf_size=5), X, "tree"),
        ("BallTree", neighbors.BallTree(X, leaf_size=5, metric="minkowski"), X, "tree"),
        ("NearestNeighbors-ball", neighbors.NearestNeighbors(n_neighbors=3, algorithm="ball_tree"), X, None),
        ("CountVectorizer", feature_extraction.text.CountVectorizer(), docs, None),
        ("HashingVectorizer", feature_extraction.text.HashingVectorizer(n_features=64), docs, None),
        ("OrdinalEncoder-str", preprocessing.OrdinalEncoder(), Xcat, None),
        ("OneHotEncoder-dense-str", preprocessing.OneHotEncoder(sparse_output=False), Xcat, None),
        ("DecisionTreeRegressor", tree.DecisionTreeRegressor(max_depth=4, random_state=1), X, yr),
        ("LogisticRegression-multi", linear_model.LogisticRegression(max_iter=200), X, yc),
        ("AgglomerativeClustering", cluster.AgglomerativeClustering(3), X, None),
        ("FastICA", decomposition.FastICA(2, random_state=1, max_iter=50), X, None),
        ("RobustScaler", preprocessing.RobustScaler(), X, None),
        ("PolynomialFeatures", preprocessing.PolynomialFeatures(2), X, None),
    ]


def _all_models():
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est, X, y in sp._models():
            est.fit(X) if y is None else est.fit(X, y)
            out.append((name, est, X))
        for name, est, X, y in _extra_models():
            if y is None:
                est.fit(X)
            elif not isinstance(y, str):
                est.fit(X, y)
            out.append((name, est, X))
    return out


MODELS = _all_models()
NAMES = [m[0] for m in MODELS]


def _write(est, path, fmt):
    if fmt.startswith("joblib"):
        joblib.dump(est, path, compress=int(fmt[-1]))
        return lambda: joblib.load(path)
    data = pickle.dumps(est, protocol=int(fmt[1:]))
    path.write_bytes(data)
    return lambda: pickle.loads(data)


def _outputs(est, X):
    """{method: result} for every output method `est` answers on X."""
    out = {}
    for m in METHODS:
        fn = getattr(est, m, None)
        if fn is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[m] = fn(X)
        except (AttributeError, NotImplementedError, TypeError, ValueError) as e:
            out[m] = ("raised", type(e).__name__)  # must raise alike on both objects
    for attr in ("labels_", "children_", "core_sample_indices_"):  # clusterers without predict
        if hasattr(est, attr) and not hasattr(est, "predict"):
            out[attr] = getattr(est, attr)
    if hasattr(est, "query"):  # KDTree / BallTree
        out["query"] = est.query(X[:10], k=3)
        out["query_radius"] = est.query_radius(X[:5], r=1.0, count_only=True)
    return out


def _same(a, b):
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "toarray") and hasattr(b, "toarray"):
        a, b = a.toarray(), b.toarray()
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and (
            a.tobytes() == b.tobytes() if a.dtype != object else a.tolist() == b.tolist())
    return a == b


def _state(obj):
    """The pickle of `obj` without memo: equal for equal state whatever is shared (sharing of
    immutable str/bytes is checked on its own in test_str_bytes_sharing)."""
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=4)
    p.fast = True
    p.dump(obj)
    return f.getvalue()


def test_enough_estimators():
    kinds = {type(est) for _, est, _ in MODELS}
    assert len(kinds) >= 30, sorted(c.__name__ for c in kinds)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("idx", range(len(MODELS)), ids=NAMES)
def test_load_predicts_identically(tmp_path, idx, fmt):
    name, est, X = MODELS[idx]
    path = tmp_path / (name + "." + fmt)
    reference = _write(est, path, fmt)
    want = reference()
    got = pp.load(path, policy="sklearn")
    assert type(got) is type(want)
    wo, go = _outputs(want, X), _outputs(got, X)
    assert wo, "%s has no output method" % name
    assert sorted(wo) == sorted(go)
    for m in wo:
        assert _same(go[m], wo[m]), "%s.%s differs (%s)" % (name, m, fmt)
    # the whole state, not only what the methods read
    assert _state(got) == _state(want), name


@pytest.mark.parametrize("idx", range(len(MODELS)), ids=NAMES)
def test_loads_bytes_and_mmap(tmp_path, idx):
    name, est, X = MODELS[idx]
    data = pickle.dumps(est, protocol=5)
    want = pickle.loads(data)
    got = pp.loads(data, policy="sklearn")
    assert _state(got) == _state(want), name
    path = tmp_path / (name + ".joblib")
    joblib.dump(est, path)
    mapped = pp.load(path, policy="sklearn", mmap_mode="r")
    jm = joblib.load(path, mmap_mode="r")
    wo, go = _outputs(jm, X), _outputs(mapped, X)
    for m in wo:
        assert _same(go[m], wo[m]), "%s.%s differs (mmap)" % (name, m)


def test_str_bytes_sharing():
    s, b = "".join(["gi", "ni"]), bytes(bytearray(b"xy"))
    data = pickle.dumps([s, s, b, b], protocol=4)
    got = pp.loads(data)
    assert got[0] is got[1] and got[2] is got[3]
