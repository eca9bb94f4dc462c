"""Hierarchy: a tree (or forest) whose leaves are the classes."""

from collections.abc import Mapping
import numbers

import numpy as np

from ..exceptions import StructureError
from ._base import (
    ClassStructure,
    _label_array,
    _normalize_label,
    _readonly,
    _sort_key,
    _sorted_classes,
)

__all__ = ["Hierarchy"]

_PATH_PADDING = ("", None)


class Hierarchy(ClassStructure):
    """A tree, or a forest of trees, whose leaves are the classes.

    Internal nodes group the leaves; the classes of an estimator are the
    leaves, sorted. Node labels may be strings or numbers (numpy scalars are
    unwrapped); the leaves must all be strings or all be numbers so that they
    sort like ``np.unique``.

    Parameters
    ----------
    parents : dict
        Maps each child node to its parent. A root maps to ``None`` or is
        absent from the keys. Use :meth:`from_edges` for a list of
        ``(parent, child)`` edges and :meth:`from_paths` for label paths.

    Attributes
    ----------
    kind : str
        ``"hierarchy"``.
    classes : ndarray of shape (n_classes,)
        The leaves, sorted.

    Raises
    ------
    StructureError
        If ``parents`` is empty, contains a cycle (the message lists the nodes
        on it), or mixes numeric and string leaves.

    See Also
    --------
    Ordinal : Ordered classes.
    ClassGraph : Arbitrary plausibility graph between classes.

    Notes
    -----
    Children and roots are ordered like their labels; the depth-first order
    (:attr:`dfs_leaf_order`) visits them in that order, so every subtree
    covers a contiguous range of depth-first leaf positions
    (:attr:`dfs_ranges`).

    Examples
    --------
    >>> from skstruct.structures import Hierarchy
    >>> h = Hierarchy.from_paths([["tops", "tshirt"], ["tops", "coat"], ["bag"]])
    >>> h
    Hierarchy(n_nodes=4, n_leaves=3, height=1, n_trees=2)
    >>> h.classes
    array(['bag', 'coat', 'tshirt'], dtype='<U6')
    >>> h.ancestors("coat")
    ('tops',)
    >>> h.distance_matrix(metric="hops")
    array([[0., 3., 3.],
           [3., 0., 2.],
           [3., 2., 0.]])
    """

    __slots__ = (
        "_parents",
        "_labels",
        "_index",
        "_parent_idx",
        "_children",
        "_depth",
        "_node_height",
        "_roots",
        "_preorder",
        "_ranges",
        "_height",
        "_leaf_nodes",
        "_dfs_leaf_order",
        "_is_leaf",
    )

    kind = "hierarchy"

    def __init__(self, parents):
        if not isinstance(parents, Mapping):
            raise TypeError(
                "parents must be a dict mapping each child node to its parent, "
                f"got {type(parents).__name__}. Use Hierarchy.from_edges for a "
                "list of (parent, child) pairs or Hierarchy.from_paths for label "
                "paths."
            )
        if len(parents) == 0:
            raise StructureError(
                "The hierarchy is empty: parents has no nodes. Pass at least one "
                "child -> parent entry."
            )
        norm = {}
        for child, parent in parents.items():
            c = _normalize_label(child, what="node")
            p = None if parent is None else _normalize_label(parent, what="node")
            if c in norm and norm[c] != p:
                raise StructureError(
                    f"Node {c!r} has two parents, {norm[c]!r} and {p!r} (the keys "
                    "of parents collide after conversion to plain labels). A node "
                    "of a tree has one parent."
                )
            norm[c] = p
        for p in list(norm.values()):
            if p is not None and p not in norm:
                norm[p] = None
        self._build(norm)

    # ---------------------------------------------------------- constructors
    @classmethod
    def from_edges(cls, edges):
        """Build a hierarchy from ``(parent, child)`` edges.

        Parameters
        ----------
        edges : iterable of (parent, child) pairs
            One pair per edge. Repeating an identical edge is allowed.

        Returns
        -------
        hierarchy : Hierarchy

        Raises
        ------
        StructureError
            If a node has two different parents (the message names the node and
            both parents), if the edges form a cycle, or if there is no edge.

        Examples
        --------
        >>> from skstruct.structures import Hierarchy
        >>> h = Hierarchy.from_edges([("animal", "cat"), ("animal", "dog")])
        >>> h.classes
        array(['cat', 'dog'], dtype='<U3')
        """
        parents = {}
        n_edges = 0
        for n_edges, edge in enumerate(edges, start=1):
            try:
                parent, child = edge
            except (TypeError, ValueError):
                raise StructureError(
                    f"Edge {n_edges - 1} is {edge!r}; each edge must be a "
                    "(parent, child) pair."
                ) from None
            parent = _normalize_label(parent, what="node")
            child = _normalize_label(child, what="node")
            old = parents.get(child)
            if old is not None and old != parent:
                raise StructureError(
                    f"Node {child!r} has two parents, {old!r} and {parent!r}. A "
                    "node of a tree has one parent: remove one of the edges or "
                    "give the two nodes different names."
                )
            parents[child] = parent
        if n_edges == 0:
            raise StructureError(
                "The hierarchy is empty: edges has no (parent, child) pair."
            )
        return cls(parents)

    @classmethod
    def from_paths(cls, paths):
        """Build a hierarchy from label paths, root first (hiclass style).

        Parameters
        ----------
        paths : sequence of sequences, or 2-D array
            Each path lists the nodes from a root down to a leaf; paths may have
            different lengths (``""`` or ``None`` padding at the end is
            ignored, as in hiclass's 2-D arrays). Repeated paths are fine.

        Returns
        -------
        hierarchy : Hierarchy

        Raises
        ------
        StructureError
            If a node name is used under two different parents (or both as a
            root and a child): node names must be unique across the hierarchy.

        Examples
        --------
        >>> from skstruct.structures import Hierarchy
        >>> h = Hierarchy.from_paths([["tops", "tshirt"], ["tops", "coat"], ["bag"]])
        >>> h.roots
        ('bag', 'tops')
        >>> h.children("tops")
        ('coat', 'tshirt')
        """
        if isinstance(paths, str):
            raise TypeError(
                "paths must be a sequence of label paths such as "
                f"[['tops', 'coat'], ['bag']], got the string {paths!r}."
            )
        parents = {}
        where = {}
        n_paths = 0
        for n_paths, path in enumerate(paths, start=1):
            i_path = n_paths - 1
            if isinstance(path, str) or not hasattr(path, "__iter__"):
                raise StructureError(
                    f"Path {i_path} is {path!r}; each path must be a sequence of "
                    "labels from a root to a leaf, e.g. ['tops', 'coat']."
                )
            labels = [x.item() if isinstance(x, np.generic) else x for x in path]
            while labels and labels[-1] in _PATH_PADDING:
                labels.pop()
            if not labels:
                raise StructureError(f"Path {i_path} is empty.")
            labels = [_normalize_label(x, what="node") for x in labels]
            for k, node in enumerate(labels):
                parent = labels[k - 1] if k > 0 else None
                if node in parents and parents[node] != parent:
                    old, old_path = parents[node], where[node]
                    raise StructureError(
                        f"Node {node!r} is used under two different parents: "
                        f"{_describe_parent(old)} in path {old_path} and "
                        f"{_describe_parent(parent)} in path {i_path}. Node names "
                        "must be unique across the hierarchy; make them unique, "
                        f"e.g. by prefixing the parent: "
                        f"{_prefixed(old, node)!r} and {_prefixed(parent, node)!r}."
                    )
                if node not in parents:
                    parents[node] = parent
                    where[node] = i_path
        if n_paths == 0:
            raise StructureError("The hierarchy is empty: paths has no path.")
        return cls(parents)

    # ------------------------------------------------------------------ build
    def _build(self, parents):
        labels = sorted(parents, key=_sort_key)
        index = {label: i for i, label in enumerate(labels)}
        n_nodes = len(labels)
        parent_idx = np.array(
            [-1 if parents[x] is None else index[parents[x]] for x in labels],
            dtype=np.int64,
        )
        _check_acyclic(parent_idx, labels)

        children = [[] for _ in range(n_nodes)]
        for i, p in enumerate(parent_idx.tolist()):
            if p >= 0:
                children[p].append(i)
        roots = [i for i in range(n_nodes) if parent_idx[i] < 0]

        # Depth-first preorder, children and roots in label order.
        preorder = []
        stack = roots[::-1]
        while stack:
            i = stack.pop()
            preorder.append(i)
            stack.extend(children[i][::-1])
        preorder = np.array(preorder, dtype=np.int64)

        is_leaf = np.array([not c for c in children], dtype=bool)
        depth = np.zeros(n_nodes, dtype=np.int64)
        pre_list = preorder.tolist()
        par_list = parent_idx.tolist()
        depth_list = [0] * n_nodes
        for i in pre_list:
            p = par_list[i]
            if p >= 0:
                depth_list[i] = depth_list[p] + 1
        depth[:] = depth_list

        n_leaves_under = is_leaf.astype(np.int64).tolist()
        node_height = [0] * n_nodes
        for i in reversed(pre_list):
            p = par_list[i]
            if p >= 0:
                n_leaves_under[p] += n_leaves_under[i]
                if node_height[i] + 1 > node_height[p]:
                    node_height[p] = node_height[i] + 1
        leaves_before = np.concatenate(([0], np.cumsum(is_leaf[preorder])))[:-1]
        ranges = np.empty((n_nodes, 2), dtype=np.int64)
        ranges[preorder, 0] = leaves_before
        ranges[:, 1] = ranges[:, 0] + np.asarray(n_leaves_under, dtype=np.int64)

        leaf_nodes = np.flatnonzero(is_leaf)  # label order == class order
        classes = _sorted_classes([labels[i] for i in leaf_nodes], kind="hierarchy")
        leaf_class = np.full(n_nodes, -1, dtype=np.int64)
        leaf_class[leaf_nodes] = np.arange(len(leaf_nodes))
        dfs_leaf_order = leaf_class[preorder[is_leaf[preorder]]]

        self._set(
            _classes=_readonly(classes),
            _cache={},
            _parents=dict(parents),
            _labels=labels,
            _index=index,
            _parent_idx=_readonly(parent_idx),
            _children=tuple(tuple(c) for c in children),
            _depth=_readonly(depth),
            _node_height=_readonly(np.asarray(node_height, dtype=np.int64)),
            _roots=tuple(roots),
            _preorder=_readonly(preorder),
            _ranges=_readonly(ranges),
            _height=int(depth.max()),
            _leaf_nodes=_readonly(leaf_nodes),
            _dfs_leaf_order=_readonly(dfs_leaf_order),
            _is_leaf=_readonly(is_leaf),
        )

    def _node(self, node):
        """Index of ``node``; StructureError if it is not in the hierarchy."""
        try:
            return self._index[_normalize_label(node, what="node")]
        except (KeyError, StructureError):
            raise StructureError(
                f"Node {node!r} is not in the hierarchy "
                f"({len(self._labels)} nodes, {self.n_classes} leaves)."
            ) from None

    def _leaf_ancestors(self):
        """(n_classes, height + 1) node indices: column k = ancestor at depth k.

        Columns deeper than a leaf repeat the leaf itself.
        """

        def compute():
            depth = np.asarray(self._depth)
            parent = np.asarray(self._parent_idx)
            n_nodes = len(depth)
            anc = np.repeat(np.arange(n_nodes)[:, None], self._height + 1, axis=1)
            cur = np.arange(n_nodes)
            rows = np.arange(n_nodes)
            for steps in range(self._height + 1):
                ok = depth >= steps
                anc[rows[ok], depth[ok] - steps] = cur[ok]
                up = parent[cur]
                cur = np.where(up >= 0, up, cur)
            return anc[np.asarray(self._leaf_nodes)]

        return self._cached("leaf_ancestors", compute)

    # ------------------------------------------------------------------ views
    @property
    def parents(self):
        """Child -> parent dict (roots map to ``None``); a new dict each call."""
        return dict(self._parents)

    @property
    def nodes(self):
        """All node labels, in depth-first preorder (a tuple)."""
        labels = self._labels
        return tuple(labels[i] for i in self._preorder.tolist())

    @property
    def n_nodes(self):
        """Number of nodes, leaves included."""
        return len(self._labels)

    @property
    def n_leaves(self):
        """Number of leaves, equal to ``n_classes``."""
        return self.n_classes

    @property
    def roots(self):
        """Root labels, sorted (a tuple; several roots make a forest)."""
        return tuple(self._labels[i] for i in self._roots)

    @property
    def height(self):
        """Depth of the deepest leaf (0 when every root is a leaf)."""
        return self._height

    def parent(self, node):
        """Parent of ``node``, or ``None`` for a root.

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        parent : object or None
            The parent's label.
        """
        p = self._parent_idx[self._node(node)]
        return None if p < 0 else self._labels[p]

    def ancestors(self, node):
        """Ancestors of ``node``, parent first and root last (a tuple).

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        ancestors : tuple
            Labels from the parent up to the root.
        """
        out = []
        p = self._parent_idx[self._node(node)]
        while p >= 0:
            out.append(self._labels[p])
            p = self._parent_idx[p]
        return tuple(out)

    def depth(self, node):
        """Number of edges between ``node`` and its root (roots have depth 0).

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        depth : int
            Edges to the root.
        """
        return int(self._depth[self._node(node)])

    def node_height(self, node):
        """Length of the longest downward path from ``node`` to a leaf.

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        height : int
            0 for a leaf.
        """
        return int(self._node_height[self._node(node)])

    def children(self, node):
        """Children of ``node`` in label order (a tuple, empty for a leaf).

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        children : tuple
            Labels of the children.
        """
        return tuple(self._labels[i] for i in self._children[self._node(node)])

    def siblings(self, node):
        """Other children of the parent of ``node`` (empty for a root).

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        siblings : tuple
            Labels of the siblings.
        """
        i = self._node(node)
        p = self._parent_idx[i]
        if p < 0:
            return ()
        return tuple(self._labels[j] for j in self._children[p] if j != i)

    def is_leaf(self, node):
        """Whether ``node`` is a leaf, i.e. a class.

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        is_leaf : bool
            True for a leaf.
        """
        return bool(self._is_leaf[self._node(node)])

    def leaves_under(self, node):
        """Sorted labels of the leaves under ``node`` (the node itself if a leaf).

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        leaves : ndarray
            Leaf labels, sorted.
        """
        start, stop = self._ranges[self._node(node)]
        return self._classes[np.sort(self._dfs_leaf_order[start:stop])]

    # -------------------------------------------------------- depth-first order
    @property
    def dfs_leaf_order(self):
        """Depth-first leaf order: position k holds the index into ``classes``."""
        return self._dfs_leaf_order

    def node_leaf_range(self, node):
        """``(start, stop)`` depth-first leaf positions covered by ``node``.

        Parameters
        ----------
        node : object
            A node label of the hierarchy.

        Returns
        -------
        range : tuple of int
            Positions ``start`` to ``stop - 1`` in ``dfs_leaf_order``.
        """
        start, stop = self._ranges[self._node(node)]
        return int(start), int(stop)

    @property
    def dfs_nodes(self):
        """All node labels in depth-first preorder, a read-only 1-D array."""
        return self._cached(
            "dfs_nodes", lambda: _label_array(self._labels[i] for i in self._preorder)
        )

    @property
    def dfs_ranges(self):
        """(n_nodes, 2) int64 ``[start, stop)`` leaf ranges, aligned with ``dfs_nodes``."""
        return self._cached("dfs_ranges", lambda: self._ranges[self._preorder])

    @property
    def dfs_depths(self):
        """(n_nodes,) int64 node depths, aligned with ``dfs_nodes``."""
        return self._cached("dfs_depths", lambda: self._depth[self._preorder])

    def ancestor_at_depth(self, labels, depth):
        """Map leaf labels to their ancestor at ``depth``.

        Parameters
        ----------
        labels : array-like of leaf labels
            Leaf labels to map.
        depth : int
            Target depth, roots being at depth 0. A leaf at depth ``depth`` or
            shallower maps to itself.

        Returns
        -------
        ancestors : ndarray
            Array of node labels of the same shape as ``labels``.

        Examples
        --------
        >>> from skstruct.structures import Hierarchy
        >>> h = Hierarchy.from_paths([["tops", "tshirt"], ["tops", "coat"], ["bag"]])
        >>> h.ancestor_at_depth(["coat", "bag"], 0)
        array(['tops', 'bag'], dtype='<U6')
        """
        depth = _check_depth(depth, "depth")
        idx = self.encode(labels)
        col = min(depth, self._height)
        nodes = self._leaf_ancestors()[idx, col]
        node_labels = self._cached("node_labels", lambda: _label_array(self._labels))
        return node_labels[nodes]

    # ------------------------------------------------------------- matrices
    def plausibility_matrix(self, sibling_depth=None):
        """Boolean (n_classes, n_classes) matrix of mutually plausible leaves.

        Parameters
        ----------
        sibling_depth : int or None, default=None
            ``None``: leaves sharing a parent are plausible for each other.
            An int: leaves sharing their ancestor at that depth are (a leaf at
            that depth or shallower is plausible only for itself). Roots have
            no parent, so a leaf that is a root is alone.

        Returns
        -------
        Q : ndarray of shape (n_classes, n_classes), dtype=bool
            Read-only, symmetric, diagonal True, rows and columns in
            ``classes`` order.
        """
        if sibling_depth is not None:
            sibling_depth = _check_depth(sibling_depth, "sibling_depth")

        def compute():
            n = self.n_classes
            if sibling_depth is None:
                leaf_nodes = np.asarray(self._leaf_nodes)
                key = np.asarray(self._parent_idx)[leaf_nodes]
                key = np.where(key >= 0, key, -1 - np.arange(n))
            else:
                key = self._leaf_ancestors()[:, min(sibling_depth, self._height)]
            return key[:, None] == key[None, :]

        return self._cached(("plausibility", sibling_depth), compute)

    def distance_matrix(self, metric="lca"):
        """Tree distance between leaves, (n_classes, n_classes) float64.

        Parameters
        ----------
        metric : {'lca', 'hops'}, default='lca'
            ``'lca'``: height of the lowest common ancestor (the length of the
            longest downward path from it to a leaf); 0 on the diagonal, and
            ``height + 1`` between leaves of different trees of a forest.
            ``'hops'``: number of edges on the path between the two leaves;
            between different trees, the sum of their depths plus 2 (as if a
            virtual root joined the roots).

        Returns
        -------
        D : ndarray of shape (n_classes, n_classes)
            Read-only, symmetric, zero diagonal, ``classes`` order.
        """
        if metric not in ("lca", "hops"):
            raise ValueError(
                f"metric={metric!r} is not supported; expected 'lca' or 'hops'."
            )
        return self._cached(("distance", metric), lambda: self._distance(metric))

    def _distance(self, metric):
        # Pairs of leaves whose lowest common ancestor is node a are the
        # strips "rows of a child c of a, columns of a outside c" when the
        # columns are in depth-first order: each pair is written once (O(C^2)
        # writes, two slice assignments per edge). Rows are written directly
        # in ``classes`` order; a last pass over blocks of rows permutes the
        # columns to ``classes`` order (one (C, C) allocation in all).
        n = self.n_classes
        ranges = np.asarray(self._ranges)
        dfs_class = np.asarray(self._dfs_leaf_order)  # DFS position -> class
        leaf_pos = np.empty(n, dtype=np.int64)  # class -> DFS position
        leaf_pos[dfs_class] = np.arange(n)
        identity = bool(np.array_equal(dfs_class, np.arange(n)))
        if metric == "lca":
            value = np.asarray(self._node_height, dtype=np.float64)
            across_trees = float(self._height + 1)
        else:  # lowest common ancestor depth, -1 across trees
            value = np.asarray(self._depth, dtype=np.float64)
            across_trees = -1.0
        out = np.empty((n, n))
        out.fill(across_trees)
        for a, kids in enumerate(self._children):
            if not kids:
                continue
            start, stop = ranges[a].tolist()
            v = value[a]
            for c in kids:
                c_start, c_stop = ranges[c].tolist()
                rows = (
                    slice(c_start, c_stop) if identity else dfs_class[c_start:c_stop]
                )
                if c_start > start:
                    out[rows, start:c_start] = v
                if c_stop < stop:
                    out[rows, c_stop:stop] = v
        leaf_depth = np.asarray(self._depth, dtype=np.float64)[self._leaf_nodes]
        if identity and metric == "lca":
            np.fill_diagonal(out, 0.0)
            return out
        block = max(1, min(n, (1 << 21) // n))  # ~16 MiB of float64 per block
        buf = np.empty((block, n))
        for b0 in range(0, n, block):
            b1 = min(n, b0 + block)
            chunk = buf[: b1 - b0]
            if identity:
                np.copyto(chunk, out[b0:b1])
            else:
                np.take(out[b0:b1], leaf_pos, axis=1, out=chunk)
            if metric == "hops":  # depth_i + depth_j - 2 * lca_depth
                chunk *= -2.0
                chunk += leaf_depth[b0:b1, None]
                chunk += leaf_depth[None, :]
            out[b0:b1] = chunk
        np.fill_diagonal(out, 0.0)
        return out

    # ---------------------------------------------------------- protocol
    def _key(self):
        return frozenset(self._parents.items())

    def __reduce__(self):
        return (type(self), (dict(self._parents),))

    def __repr__(self):
        trees = f", n_trees={len(self._roots)}" if len(self._roots) > 1 else ""
        return (
            f"Hierarchy(n_nodes={self.n_nodes}, n_leaves={self.n_leaves}, "
            f"height={self.height}{trees})"
        )


def _check_depth(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
    return int(value)


def _describe_parent(parent):
    return "no parent (a root)" if parent is None else f"parent {parent!r}"


def _prefixed(parent, node):
    return str(node) if parent is None else f"{parent}/{node}"


def _check_acyclic(parent_idx, labels):
    """Raise a StructureError naming the nodes of a cycle, if there is one."""
    parent = parent_idx.tolist()
    state = [0] * len(parent)  # 0 new, 1 on the current walk, 2 done
    for start in range(len(parent)):
        if state[start]:
            continue
        walk = []
        i = start
        while i >= 0 and state[i] == 0:
            state[i] = 1
            walk.append(i)
            i = parent[i]
        if i >= 0 and state[i] == 1:
            cycle = walk[walk.index(i):]
            names = [labels[j] for j in cycle] + [labels[cycle[0]]]
            shown = " -> ".join(repr(x) for x in names)
            raise StructureError(
                f"The hierarchy has a cycle: {shown} (each arrow points from a "
                "node to its parent). A hierarchy must be a tree or a forest: "
                "break the cycle."
            )
        for j in walk:
            state[j] = 2
