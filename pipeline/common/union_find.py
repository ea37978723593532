"""Disjoint sets over 0..n-1, for grouping what links pairwise (letters into text lines, patents into groups)."""

from __future__ import annotations


class UnionFind:
    """Union-find with path halving; a set's root is its smallest index, so groups have a stable name."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
